"""Rules vs rules + models: the matcher on hand-made records, and the held-out month."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from carecircle.common.errors import ContractError
from carecircle.ml.evaluation import AlertRecord, Period, TruthIncident, compare, read_truth
from carecircle.ml.evaluation.offline import evaluate_synthetic
from carecircle.ml.evaluation.records import write_truth

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def inc(rid: str, kind: str, start: int, end: int, benign: bool = False) -> TruthIncident:
    return TruthIncident(
        f"{rid}-{kind}-{start}", rid, "hh", kind, benign, T0 + start * H, T0 + end * H
    )


def test_compare_counts_recall_precision_delay_and_false_alerts_per_resident_day() -> None:
    truth = [
        inc("a", "prolonged_inactivity", 10, 14),
        inc("b", "prolonged_inactivity", 30, 33),
        inc("a", "missed_wakeup", 50, 53),
        inc("c", "away_from_home", 60, 66, benign=True),
    ]
    rules = [
        AlertRecord("prolonged_inactivity", "a", T0 + 14 * H),  # 4 h late
        AlertRecord("prolonged_inactivity", "c", T0 + 64 * H),  # during a benign outing: false
        AlertRecord("missed_wakeup", "a", T0 + 200 * H),  # nothing going on: false
    ]
    models = [
        AlertRecord("unusual_inactivity", "a", T0 + 12 * H, "model"),  # 2 h
        AlertRecord("unusual_inactivity", "b", T0 + 32 * H, "model"),
        AlertRecord("missed_routine", "a", T0 + 51 * H, "model"),
        AlertRecord("unusual_inactivity", "b", T0 + 90 * H, "model"),  # false
    ]
    period = Period(T0, T0 + timedelta(days=10), residents=3)
    table = compare(rules, models, truth, period)
    pi_rules = table.rules["prolonged_inactivity"]
    assert (pi_rules.incidents, pi_rules.detected, pi_rules.false_alerts) == (2, 1, 1)
    assert pi_rules.recall == 0.5 and pi_rules.median_delay_min == 240
    pi_both = table.combined["prolonged_inactivity"]
    assert pi_both.detected == 2 and pi_both.false_alerts == 2
    assert pi_both.median_delay_min == 120  # first alert per incident
    assert pi_both.precision == pytest.approx(3 / 5)
    assert pi_both.false_per_resident_day == pytest.approx(2 / 30)
    mw = table.combined["missed_wakeup"]
    assert mw.recall == 1.0 and mw.false_alerts == 1 and mw.median_delay_min == 60
    assert table.models["missed_wakeup"].false_alerts == 0
    text = table.render()
    assert "rules+models" in text and "prolonged_inactivity" in text and "30 resident-days" in text
    # timely recall (within 2 h): the rule's 4 h detection does not count, the model's 2 h does
    assert pi_rules.timely_recall == 0.0 and pi_both.timely_recall == 1.0
    assert table.models["prolonged_inactivity"].timely == 2
    assert "<= 2 h" in text


def test_truth_file_round_trip_and_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    items = [inc("a", "fall", 1, 2), inc("b", "family_visit", 3, 5, benign=True)]
    write_truth(path, items)
    assert read_truth(path) == items
    path.write_text(json.dumps({"incident_id": "x", "site_id": "s", "kind": "fall"}) + "\n")
    with pytest.raises(ContractError, match=r"truth.jsonl:1"):
        read_truth(path)
    path.write_text("not json\n")
    with pytest.raises(ContractError, match="not JSON"):
        read_truth(path)


@pytest.mark.slow
def test_models_and_rules_beat_rules_alone_on_a_held_out_synthetic_month() -> None:
    """Trained on one month (seed 11), evaluated on the next (seed 9001, never trained on)."""
    tz = ZoneInfo("Asia/Shanghai")
    result = evaluate_synthetic(
        residents=40,
        train_days=28,
        eval_days=28,
        population_seed=7,
        train_seed=11,
        eval_seed=9001,
        start=datetime(2026, 10, 5, tzinfo=tz),
        tz=tz,
    )
    t = result.table
    for kind in ("prolonged_inactivity", "missed_wakeup"):
        rules, both = t.rules[kind], t.combined[kind]
        assert rules.incidents >= 20
        assert both.recall is not None and rules.recall is not None
        assert both.recall >= rules.recall + 0.1, t.render()
        assert both.false_alerts <= rules.false_alerts, t.render()
    assert t.models["routine_drift"].recall == 1.0
