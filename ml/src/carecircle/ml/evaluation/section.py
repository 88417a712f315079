"""The ml section of ``carecircle eval``: rules alone vs rules + models, side by side.

Registered in the ``carecircle.eval_sections`` entry-point group; ``carecircle eval``
calls it with the alerts database, the period and the ground-truth incidents it read.

"rules" is what the rules alone would have raised: the rule alerts the platform opened
plus the rule findings a model gate withheld (``alert_withheld``, at the time the rule
first found them); "rules+models" is what the platform raised with the models on (the
withheld findings are not in it, a delayed one counts at its later opening).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carecircle.ml.evaluation.compare import ComparisonTable, compare, rules_alone
from carecircle.ml.evaluation.records import Period, TruthIncident
from carecircle.ml.evaluation.store import alerts_with_ids, withheld_between


def store_table(
    conn: Any, since: datetime, until: datetime, truth: list[TruthIncident], residents: int
) -> tuple[ComparisonTable, int]:
    """The table from the alerts (and withheld rule findings) in the store; also how
    many rule findings a gate withheld in the period."""
    stored = alerts_with_ids(conn, since, until)
    alerts = [rec for _, rec in stored]
    withheld = withheld_between(conn, since, until)
    table = compare(
        rules_alone([(i, a) for i, a in stored if a.source != "model"], withheld),
        [a for a in alerts if a.source == "model"],
        truth,
        Period(since, until, residents=residents),
        combined_alerts=alerts,
    )
    return table, len(withheld)


def eval_section(conn: Any, since: datetime, until: datetime, incidents: Any) -> dict[str, Any]:
    truth = [TruthIncident.from_json(i.model_dump(mode="json")) for i in incidents]
    row = conn.execute("SELECT count(*) FROM residents").fetchone()
    residents = max(len({t.resident_id for t in truth if t.resident_id}), int(row[0]) if row else 0)
    table, withheld = store_table(conn, since, until, truth, residents)
    return {"table": table.render(), "rows": table.rows(), "withheld": withheld}
