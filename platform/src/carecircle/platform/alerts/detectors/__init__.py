"""Detectors: pure functions from typed inputs and ``now`` to :class:`AlertDraft` lists."""
