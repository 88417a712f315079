"""The versioned model registry: joblib files under one directory, rows in ``ml_models``."""

from carecircle.ml.registry.store import ModelRecord, ModelRegistry, fingerprint

__all__ = ["ModelRecord", "ModelRegistry", "fingerprint"]
