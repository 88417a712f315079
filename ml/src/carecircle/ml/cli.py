"""``carecircle ml …`` commands."""

from __future__ import annotations

import click


@click.group("ml")
def ml() -> None:
    """Per-resident anomaly models: train, evaluate, promote."""
