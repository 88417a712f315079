"""The wire contract: vocabulary, envelope validation, batch decoding, topics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecircle.common.contract import (
    VOCABULARY,
    Batch,
    Code,
    Envelope,
    Kind,
    Topics,
    Uplink,
    decode_batch,
    decode_envelope,
)
from carecircle.common.errors import ContractError

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def item(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "kind": "reading",
        "gw": "gw-1",
        "dev": "band-1",
        "res": "r-1",
        "site": "hh-1",
        "ts": NOW.isoformat(),
        "gw_ts": NOW.isoformat(),
        "payload": {"code": "heart_rate", "value": 72, "unit": "/min"},
    }
    base.update(over)
    return base


def batch(*items: dict[str, Any], gw: str = "gw-1") -> bytes:
    return json.dumps({"v": 1, "gw": gw, "sent_at": NOW.isoformat(), "items": list(items)}).encode()


def test_vocabulary_is_closed_and_coded() -> None:
    assert set(VOCABULARY) == set(Code)
    assert VOCABULARY[Code.HEART_RATE].loinc == "8867-4"
    assert VOCABULARY[Code.SPO2].loinc == "2708-6"
    assert VOCABULARY[Code.FALL].scaip_device == "0005"
    assert VOCABULARY[Code.SOS].scaip_status == "0010"
    alarms = {c for c, s in VOCABULARY.items() if s.alarm}
    assert {
        Code.SOS,
        Code.FALL,
        Code.SMOKE,
        Code.GAS,
        Code.CARBON_MONOXIDE,
        Code.WATER_LEAK,
    } <= alarms
    assert Code.HEART_RATE not in alarms


def test_valid_envelope_round_trips() -> None:
    env = decode_envelope(item())
    assert env.payload.code is Code.HEART_RATE and env.payload.value == 72
    again = decode_envelope(env.to_json())
    assert again == env


@pytest.mark.parametrize(
    ("payload", "kind", "reason"),
    [
        ({"code": "heart_rate", "value": 900}, "reading", "above the possible maximum"),
        ({"code": "spo2", "value": 140}, "reading", "above the possible maximum"),
        ({"code": "heart_rate"}, "reading", "a value is required"),
        ({"code": "smoke", "value": 0.5}, "event", "boolean values are 0 or 1"),
        ({"code": "steps", "value": -3}, "reading", "non-negative"),
        ({"code": "sos", "value": 1}, "reading", "not allowed in a reading"),
        ({"code": "heart_rate", "value": 70, "unit": "bpm"}, "reading", "unit of heart_rate"),
        ({"code": "teleport", "value": 1}, "event", "payload.code"),
    ],
)
def test_impossible_messages_are_refused_with_reason(
    payload: dict[str, Any], kind: str, reason: str
) -> None:
    with pytest.raises(ContractError, match=reason):
        decode_envelope(item(kind=kind, payload=payload))


def test_naive_timestamps_and_bad_ids_are_refused() -> None:
    with pytest.raises(ContractError, match="ts"):
        decode_envelope(item(ts="2026-11-29T08:00:00"))
    with pytest.raises(ContractError, match="dev"):
        decode_envelope(item(dev="../../etc/passwd"))


def test_batch_keeps_good_items_and_rejects_bad_ones() -> None:
    good = item()
    bad = item(payload={"code": "spo2", "value": 140})
    decoded = decode_batch(batch(good, bad), topic_gateway="gw-1", now=NOW)
    assert [str(e.id) for e in decoded.items] == [good["id"]]
    assert len(decoded.rejected) == 1
    assert "spo2" in decoded.rejected[0].reason and decoded.rejected[0].raw == bad


def test_gateway_may_not_speak_for_another() -> None:
    decoded = decode_batch(batch(item(), gw="gw-1"), topic_gateway="gw-2")
    assert not decoded.items and "gw-2" in decoded.rejected[0].reason
    inner = decode_batch(batch(item(gw="gw-9")), topic_gateway="gw-1")
    assert not inner.items and "claims gateway 'gw-9'" in inner.rejected[0].reason


def test_implausible_timestamps_are_refused() -> None:
    years_off = item(ts=(NOW - timedelta(days=3 * 365)).isoformat())
    future = item(ts=(NOW + timedelta(hours=2)).isoformat())
    decoded = decode_batch(batch(years_off, future, item()), now=NOW)
    assert len(decoded.items) == 1 and len(decoded.rejected) == 2
    assert all("implausible" in r.reason for r in decoded.rejected)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (json.dumps({"v": 2, "gw": "gw-1", "items": [1]}).encode(), "schema version"),
        (json.dumps({"v": 1, "gw": "gw-1", "items": []}).encode(), "no 'items'"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_batches_are_rejected_whole(raw: bytes, reason: str) -> None:
    decoded = decode_batch(raw)
    assert not decoded.items and reason in decoded.rejected[0].reason


def test_batch_model_enforces_one_gateway() -> None:
    env = decode_envelope(item(gw="gw-2"))
    with pytest.raises(ValueError, match="claims gateway"):
        Batch(gw="gw-1", sent_at=NOW, items=[env])


def test_alarm_flag_follows_vocabulary() -> None:
    assert decode_envelope(item(kind="event", payload={"code": "sos", "value": 1})).is_alarm
    assert not decode_envelope(item()).is_alarm
    assert Kind.HEARTBEAT.value == "heartbeat"


def test_topics_scheme_and_parsing() -> None:
    t = Topics("cc")
    assert t.uplink("gw-1", Uplink.ALARM) == "cc/v1/gw/gw-1/up/alarm"
    assert t.shared_uplink_filter() == "$share/ingest/cc/v1/gw/+/up/+"
    assert t.parse_uplink("cc/v1/gw/gw-1/up/batch") == ("gw-1", Uplink.BATCH)
    assert t.parse_uplink("cc/v1/gw/gw-1/up/other") is None
    assert t.parse_uplink("xx/v1/gw/gw-1/up/batch") is None
    assert t.gateway_config("gw-1") == "cc/v1/gw/gw-1/config"
    assert t.responder_tasks("v-7") == "cc/v1/responder/v-7/task"
    assert t.gateway_ingest("gw-1") == "cc/v1/gw/gw-1/ingest"
    assert t.parse_gateway_state(t.gateway_state("gw-1")) == "gw-1"
    assert t.parse_gateway_state("cc/v1/gw/gw-1/config") is None
    assert t.parse_gateway_state("xx/v1/gw/gw-1/state") is None
    assert t.parse_gateway_state("cc/v1/gw/+/state") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_decode_batch_never_raises(raw: bytes) -> None:
    decoded = decode_batch(raw, topic_gateway="gw-1", now=NOW)
    assert not decoded.items or all(isinstance(e, Envelope) for e in decoded.items)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(item().keys())), json_values, max_size=6))
def test_decode_batch_survives_mutated_items(mutation: dict[str, Any]) -> None:
    decoded = decode_batch(batch(item(**mutation)), topic_gateway="gw-1", now=NOW)
    assert len(decoded.items) + len(decoded.rejected) == 1
