"""The rules' own-devices inactivity findings of a replay: the gate's routine check on
the home's quiet table (before session 5) against the own devices' table (now).

    .venv/bin/python -m bench.ml_gate_own_devices --database-url postgresql://…/db \\
        --registry out/registry --truth out/ground_truth.jsonl \\
        --since 2026-03-19T00:00:00+08:00 --until 2026-03-27T00:00:00+08:00

Every ``prolonged_inactivity`` finding the rule judged on the resident's own devices
(``explanation.own_devices_only``) in the period, as "rules alone" counts them: the
rule alerts opened without a gate's hold, and the withheld findings (opened later or
not), at the time the rule first found them.  For each, :func:`judge`'s routine check
with the routine model active then, on both tables (the away check is left out: the
same either way), and what the finding was against the simulator's ground truth
(true / related / false and the benign look-alike; ``bench/ml_gate_report.py``).
A counterfactual at the rule's first finding only: a withheld finding can open later.
Reads only; prints text.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from bench.ml_gate_report import classify
from carecircle.ml.evaluation.records import read_truth
from carecircle.ml.gate import BandState, judge
from carecircle.ml.models.routine import RoutineModel
from carecircle.ml.registry.store import ModelRecord, ModelRegistry

INACT = "prolonged_inactivity"
_COLS = ", ".join(ModelRecord.__dataclass_fields__)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--registry", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--since", required=True)
    ap.add_argument("--until", required=True)
    ap.add_argument("--timezone", default="Asia/Shanghai")
    a = ap.parse_args()
    since, until = datetime.fromisoformat(a.since), datetime.fromisoformat(a.until)
    tz = ZoneInfo(a.timezone)
    truth = read_truth(a.truth)
    registry = ModelRegistry(a.registry)
    with psycopg.connect(a.database_url, autocommit=True) as conn:
        found: list[Any] = conn.execute(
            "SELECT resident_id, opened_at, last_seen_at, "
            "COALESCE(explanation->>'band_put_on', explanation->>'last_activity') "
            "FROM alerts WHERE kind = %s AND source = 'rule' AND NOT explanation ? 'gate' "
            "AND (explanation->>'own_devices_only')::boolean "
            "AND opened_at >= %s AND opened_at < %s",
            (INACT, since, until),
        ).fetchall()
        found += conn.execute(
            "SELECT resident_id, first_at, last_seen_at, episode_start::text FROM alert_withheld "
            "WHERE kind = %s AND (explanation->'rule'->>'own_devices_only')::boolean "
            "AND first_at >= %s AND first_at < %s",
            (INACT, since, until),
        ).fetchall()
        c: Counter[tuple[str, str, str, str]] = Counter()
        for rid, t0, t1, start in found:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    f"SELECT {_COLS} FROM ml_models WHERE owner = %s AND model = 'routine' "
                    "AND promoted_at <= %s ORDER BY promoted_at DESC LIMIT 1",
                    (rid, t0),
                ).fetchone()
            model = registry.load(ModelRecord.from_row(row)) if row is not None else None
            if model is not None and not isinstance(model, RoutineModel):
                model = None
            ep = datetime.fromisoformat(str(start))
            band = BandState(has_band=False)
            old = judge(INACT, model, ep, t0, tz, band, own_devices=False).withhold
            new = judge(INACT, model, ep, t0, tz, band, own_devices=True).withhold
            verdict, what = classify(INACT, rid, t0, t1 or t0, truth)
            word = {True: "withheld", False: "passed"}
            c[(word[old], word[new], verdict, what)] += 1
    print(f"own-devices {INACT} findings (rules alone): {len(found)}")
    print("     n  home table  own table   would be")
    for (old_v, new_v, verdict, what), n in sorted(c.items()):
        print(f"  {n:4d}  {old_v:10s}  {new_v:10s}  {verdict:8s} {what}")


if __name__ == "__main__":
    main()
