"""``carecircle sim …`` commands."""

from __future__ import annotations

import click


@click.group("sim")
def sim() -> None:
    """Simulated households, day-care centres and nursing homes."""
