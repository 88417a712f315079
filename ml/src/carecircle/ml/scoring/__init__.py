"""Live scoring: the last complete hour of each resident against their active models."""
