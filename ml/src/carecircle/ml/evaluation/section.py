"""The ml section of ``carecircle eval``: rules alone vs rules + models, side by side.

Registered in the ``carecircle.eval_sections`` entry-point group; ``carecircle eval``
calls it with the alerts database, the period and the ground-truth incidents it read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carecircle.ml.evaluation.compare import compare
from carecircle.ml.evaluation.records import Period, TruthIncident
from carecircle.ml.evaluation.store import alerts_between


def eval_section(conn: Any, since: datetime, until: datetime, incidents: Any) -> dict[str, Any]:
    truth = [TruthIncident.from_json(i.model_dump(mode="json")) for i in incidents]
    alerts = alerts_between(conn, since, until)
    row = conn.execute("SELECT count(*) FROM residents").fetchone()
    residents = max(len({t.resident_id for t in truth if t.resident_id}), int(row[0]) if row else 0)
    table = compare(
        [a for a in alerts if a.source != "model"],
        [a for a in alerts if a.source == "model"],
        truth,
        Period(since, until, residents=residents),
    )
    return {"table": table.render(), "rows": table.rows()}
