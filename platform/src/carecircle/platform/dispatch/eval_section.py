"""The dispatch section of ``carecircle eval`` (entry-point group ``carecircle.eval_sections``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carecircle.platform.dispatch.evaluation import eval_section as dispatch_eval


def eval_section(conn: Any, since: datetime, until: datetime, incidents: Any) -> dict[str, Any]:
    """KPIs of the real tasks of alerts in the period, and the seeded week against the oracle."""
    doc = dispatch_eval(conn, since, until)
    lines = []
    for part in ("kpis", "simulated_week"):
        values = doc.get(part)
        if isinstance(values, dict):
            scalars = {k: v for k, v in values.items() if isinstance(v, int | float | str)}
            lines.append(
                f"{part}: "
                + ", ".join(
                    f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in scalars.items()
                )
            )
    doc["table"] = "\n".join(lines)
    return doc
