"""What the model gate did in a replayed month, against the simulator's ground truth.

    .venv/bin/python bench/ml_gate_report.py --database-url postgresql://…/mlmonth_s90217 \\
        --truth out/ground_truth.jsonl --since 2026-03-19T00:00:00+08:00 \\
        --until 2026-04-18T00:00:00+08:00

For every rule finding a gate withheld (``alert_withheld``): which check (away,
routine, wake-up), whether it was released later (a delayed alert), and what it would
have been in "rules alone" — true (active during a real incident it can detect),
related (during another real incident of the resident) or false; for false ones, the
benign look-alike it fell in (``family_visit``, ``away_from_home``, ``nap_in_chair``,
…).  The same breakdown for the alerts the platform raised of the kinds that detect
prolonged inactivity and missed wake-up (rule and model).  Reads only; prints text.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from carecircle.ml.evaluation.compare import GRACE, LEAD, detects
from carecircle.ml.evaluation.records import TruthIncident, read_truth

KINDS = ("prolonged_inactivity", "missed_wakeup", "unusual_inactivity", "missed_routine")


def _during(rid: str, t0: datetime, t1: datetime, inc: TruthIncident) -> bool:
    return inc.resident_id == rid and t0 <= inc.end + GRACE and t1 >= inc.start - LEAD


def classify(
    kind: str, rid: str, t0: datetime, t1: datetime, truth: list[TruthIncident]
) -> tuple[str, str]:
    mine = [i for i in truth if _during(rid, t0, t1, i)]
    real = [i for i in mine if not i.benign]
    if any(i.kind in detects(kind) for i in real):
        return "true", ",".join(sorted({i.kind for i in real if i.kind in detects(kind)}))
    if real:
        return "related", ",".join(sorted({i.kind for i in real}))
    return "false", ",".join(sorted({i.kind for i in mine})) or "nothing"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--since", required=True)
    ap.add_argument("--until", required=True)
    a = ap.parse_args()
    since, until = datetime.fromisoformat(a.since), datetime.fromisoformat(a.until)
    truth = read_truth(a.truth)
    with psycopg.connect(a.database_url, autocommit=True) as conn:
        withheld: list[Any] = conn.execute(
            "SELECT kind, resident_id, first_at, last_seen_at, explanation->>'check', "
            "released_alert_id IS NOT NULL FROM alert_withheld "
            "WHERE first_at >= %s AND first_at < %s ORDER BY first_at",
            (since, until),
        ).fetchall()
        alerts: list[Any] = conn.execute(
            "SELECT kind, resident_id, opened_at, last_seen_at, source FROM alerts "
            "WHERE kind = ANY(%s) AND opened_at >= %s AND opened_at < %s ORDER BY opened_at",
            (list(KINDS), since, until),
        ).fetchall()
    print(f"withheld rule findings: {len(withheld)}")
    c: Counter[tuple[str, str, bool, str, str]] = Counter()
    for kind, rid, t0, t1, check, released in withheld:
        verdict, what = classify(kind, rid, t0, t1, truth)
        c[(kind, check or "?", bool(released), verdict, what)] += 1
    for (kind, check, released, verdict, what), n in sorted(c.items()):
        rel = "released later" if released else "never raised"
        print(f"  {n:4d}  {kind:22s} {check:8s} {rel:15s} would be {verdict:8s} {what}")
    print(f"alerts raised ({', '.join(KINDS)}): {len(alerts)}")
    d: Counter[tuple[str, str, str, str]] = Counter()
    for kind, rid, t0, t1, source in alerts:
        verdict, what = classify(kind, rid, t0, t1 or t0, truth)
        d[(kind, source, verdict, what)] += 1
    for (kind, source, verdict, what), n in sorted(d.items()):
        print(f"  {n:4d}  {kind:22s} {source:6s} {verdict:8s} {what}")


if __name__ == "__main__":
    main()
