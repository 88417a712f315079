"""CareCircle per-resident anomaly models (scikit-learn)."""
