"""The ingest fast decoder against the contract's reference decoder.

``ingest.decode.decode`` must give exactly what ``decode_batch`` (pydantic, item by item)
gives, for every input.  Its fast path (msgspec + plain checks) may decline a valid batch
(then ``decode_batch`` decides) but must never accept one that ``decode_batch`` would
refuse in whole or in part, and must build equal envelopes.  Hypothesis feeds both with
valid batches, mutated items and the unusual-but-legal forms each library reads
differently (timestamps, numbers, identifiers).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from carecircle.common.contract import Code, Decoded, Envelope, Kind, decode_batch
from carecircle.platform.ingest.decode import (
    MAX_FUTURE,
    MAX_PAST,
    DecodedItems,
    decode,
    fast_decode,
)
from carecircle.platform.ingest.items import Item

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
GW = "gw-1"


def reference(raw: bytes, topic_gateway: str | None = GW) -> Decoded:
    return decode_batch(
        raw, topic_gateway=topic_gateway, now=NOW, max_future=MAX_FUTURE, max_past=MAX_PAST
    )


def item(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "id": str(uuid.UUID(int=7, version=4)),
        "kind": "reading",
        "gw": GW,
        "dev": "band-1",
        "res": "r-1",
        "site": "hh-1",
        "ts": NOW.isoformat(),
        "gw_ts": NOW.isoformat(),
        "payload": {"code": "heart_rate", "value": 72, "unit": "/min"},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def batch(*items: dict[str, Any], gw: str = GW, **extra: Any) -> bytes:
    doc = {"v": 1, "gw": gw, "sent_at": NOW.isoformat(), "items": list(items), **extra}
    return json.dumps(doc).encode()


def same_envelopes(items: list[Item], want: list[Envelope]) -> None:
    """The decoded items are the reference's envelopes, field for field, both ways."""
    assert all(type(i) is Item for i in items)
    assert items == [Item.of(e) for e in want]
    got = [i.to_envelope() for i in items]
    assert got == want
    for a, b in zip(got, want, strict=True):
        assert type(a) is Envelope and type(a.payload) is type(b.payload)
        assert a.model_dump() == b.model_dump()
        assert a.to_json() == b.to_json()
        for t in ("ts", "gw_ts"):  # same instant *and* same offset
            assert getattr(a, t).utcoffset() == getattr(b, t).utcoffset()
            assert getattr(a, t).isoformat() == getattr(b, t).isoformat()


def check(raw: bytes, topic_gateway: str | None = GW) -> DecodedItems:
    """decode == decode_batch, and the fast path accepts only what decode_batch fully accepts."""
    want = reference(raw, topic_gateway)
    got = decode(raw, topic_gateway=topic_gateway, now=NOW)
    assert got.gateway_id == want.gateway_id
    assert got.rejected == want.rejected
    same_envelopes(got.items, want.items)
    fast = fast_decode(raw, topic_gateway, NOW)
    if fast is not None:
        assert not want.rejected, f"fast path accepted what the contract refuses: {want.rejected}"
        assert fast[0] == want.gateway_id
        same_envelopes(fast[1], want.items)
    return got


# -- examples --------------------------------------------------------------------------


def test_a_valid_batch_takes_the_fast_path() -> None:
    raw = batch(item(), item(id=str(uuid.UUID(int=8, version=4)), res=None, room="kitchen"))
    assert fast_decode(raw, GW, NOW) is not None
    assert len(check(raw).items) == 2


def test_fast_envelopes_behave_like_validated_ones() -> None:
    raw = batch(item(kind="event", payload={"code": "sos", "value": 1, "attrs": {"a": "b"}}))
    fast = fast_decode(raw, GW, NOW)
    assert fast is not None
    it = fast[1][0]
    with pytest.raises(AttributeError):
        it.res = "x"  # type: ignore[misc]
    env = it.to_envelope()
    assert env.is_alarm and env.kind is Kind.EVENT and env.payload.code is Code.SOS
    moved = env.model_copy(update={"res": "r-2", "site": "hh-2"})
    assert (moved.res, moved.site, env.res) == ("r-2", "hh-2", "r-1")
    assert Envelope.model_validate_json(env.to_json()) == env
    with pytest.raises(ValueError, match="frozen"):
        env.res = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        item(payload={"code": "heart_rate", "value": 900}),
        item(payload={"code": "heart_rate"}),
        item(payload={"code": "motion"}),
        item(payload={"code": "heart_rate", "value": 70, "unit": "bpm"}),
        item(payload={"code": "smoke", "value": 0.5}, kind="event"),
        item(payload={"code": "steps", "value": -3}),
        item(payload={"code": "steps", "value": 2.5}),
        item(payload={"code": "sos", "value": 1}),
        item(payload={"code": "teleport", "value": 1}),
        item(payload={"code": "heart_rate", "value": 70, "extra": 1}),
        item(payload={"code": "heart_rate", "value": 70, "attrs": {"k" * 65: 1}}),
        item(payload={"code": "heart_rate", "value": 70, "attrs": {str(i): i for i in range(17)}}),
        item(payload={"code": "heart_rate", "value": 70, "attrs": {"a": [1]}}),
        item(dev="../../etc/passwd"),
        item(dev="band-1\n"),
        item(site="x" * 65),
        item(res="é"),
        item(room=""),
        item(gw="gw-9"),
        item(ts="2026-11-29T08:00:00"),
        item(ts="٢٠٢٦-11-29T08:00:00Z"),
        item(ts=(NOW - timedelta(days=31)).isoformat()),
        item(ts=(NOW + timedelta(minutes=11)).isoformat()),
        item(gw_ts="yesterday"),
        item(id="not-a-uuid"),
        item(kind="gossip"),
        item(v=2),
        item(extra=True),
        item(id=_DROP),
    ],
)
def test_every_contract_rule_still_refuses(bad: dict[str, Any]) -> None:
    raw = batch(item(id=str(uuid.UUID(int=9, version=4))), bad)
    assert fast_decode(raw, GW, NOW) is None
    got = check(raw)
    assert len(got.items) + len(got.rejected) <= 2 and got.rejected


def test_a_reading_without_a_value_is_refused_with_its_reason_an_event_is_not() -> None:
    # The readings table has no room for "no value" (value NOT NULL): before this was
    # refused here, such an item failed its whole batch at COPY, again on every retry.
    got = check(
        batch(
            item(id=str(uuid.UUID(int=9, version=4)), payload={"code": "motion"}),
            item(id=str(uuid.UUID(int=10, version=4)), kind="event", payload={"code": "sos"}),
        )
    )
    assert [r.reason for r in got.rejected] == [
        "Value error, motion: a reading needs a value (booleans are 0 or 1)"
    ]
    assert [(i.kind, i.payload.code, i.payload.value) for i in got.items] == [
        (Kind.EVENT, Code.SOS, None)
    ]


@pytest.mark.parametrize(
    "odd",
    [
        item(payload={"code": "heart_rate", "value": "72"}),
        item(payload={"code": "motion", "value": True}),
        item(ts="2026-11-29T08:00:00.1234567Z"),
        item(ts="2026-11-29T07:59:59.9999999Z"),
        item(ts="2026-11-29 08:00:00Z"),
        item(ts="2026-11-29T08:00Z"),
        item(ts="2026-11-29T08:00:00,5Z"),
        item(ts=1_795_939_200),
        item(id="{12345678-1234-5678-1234-567812345678}"),
        item(v=1.0),
    ],
)
def test_legal_forms_the_fast_path_declines_decode_identically(odd: dict[str, Any]) -> None:
    raw = batch(odd, item(id=str(uuid.UUID(int=10, version=4))))
    assert fast_decode(raw, GW, NOW) is None  # decode_batch decides
    got = check(raw)
    assert len(got.items) + len(got.rejected) == 2


@pytest.mark.parametrize(
    "odd",
    [
        item(ts="2026-11-29T08:00:00.5+05:30", gw_ts="2026-11-29T08:00:00-00:00"),
        item(ts="2026-11-29T08:00:00.000001Z", res=None),
        item(id="12345678123456781234567812345678"),
        item(kind="event", payload={"code": "sos"}),
        item(payload={"code": "humidity", "value": 0}),
        item(payload={"code": "heartbeat", "value": 1e300}, kind="heartbeat"),
        item(
            kind="event", payload={"code": "button", "value": 1, "attrs": {"n": 2**80, "b": False}}
        ),
    ],
)
def test_legal_forms_the_fast_path_takes_decode_identically(odd: dict[str, Any]) -> None:
    raw = batch(odd, item(id=str(uuid.UUID(int=10, version=4))))
    assert fast_decode(raw, GW, NOW) is not None
    assert len(check(raw).items) == 2


def test_batch_level_problems() -> None:
    for raw in [
        b"{not json",
        b"[1]",
        b"\xff",
        json.dumps({"v": 1, "gw": GW, "items": []}).encode(),
        json.dumps({"v": True, "gw": GW, "items": [item()]}).encode(),
        json.dumps({"v": 1, "items": [item()]}).encode(),
        batch(item(), gw="gw-2"),
        batch(item(), extra_key="ignored"),
        batch(*[item(id=str(uuid.UUID(int=i, version=4))) for i in range(5001)]),
    ]:
        check(raw)
    check(batch(item(gw="gw-2"), gw="gw-2"), topic_gateway=None)
    check(batch(item()), topic_gateway="gw-2")


# -- property-based --------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["72", "1", "0", "reading", "event", "heart_rate", "/min", "gw-1"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

digits = st.integers(0, 9).map(str)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    when = NOW + timedelta(
        seconds=draw(st.floats(-31 * 86400, 11 * 60, allow_nan=False)),
    )
    offset = draw(st.sampled_from([0, 0, 330, -300, 23 * 60 + 59, -(23 * 60 + 59)]))
    text = when.astimezone(UTC).astimezone(
        __import__("datetime").timezone(timedelta(minutes=offset))
    )
    s = text.isoformat()
    form = draw(st.integers(0, 9))
    if form == 1 and s.endswith("+00:00"):
        s = s[:-6] + draw(st.sampled_from(["Z", "z", "-00:00", "+0000"]))
    elif form == 2 and "." in s:  # 1..9 fraction digits
        head, _, rest = s.partition(".")
        n = draw(st.integers(1, 9))
        s = (
            head
            + "."
            + (rest[:6] + "".join(draw(st.lists(digits, min_size=3, max_size=3))))[:n]
            + rest[6:]
        )
    elif form == 3:
        s = s.replace("T", draw(st.sampled_from([" ", "t", "_", "x"])), 1)
    elif form == 4:
        s = s[:10]
    elif form == 5:
        s = s[: draw(st.integers(0, len(s)))]
    elif form == 6:
        return draw(json_values)
    elif form == 7:
        return when.timestamp()
    return s


idents = st.sampled_from(["band-1", "r-1", "hh-1", "a", "A.b:c_d-e", "x" * 64, "x" * 65]) | st.text(
    max_size=6
)
payloads = st.fixed_dictionaries(
    {"code": st.sampled_from([c.value for c in Code]) | st.text(max_size=4)},
    optional={
        "value": st.none()
        | st.integers(-5, 300)
        | st.floats()
        | st.sampled_from([0, 1, 0.0, 1.0, True, False, "72", 2**70]),
        "unit": st.sampled_from(["/min", "%", "1", "Cel", "{steps}", "{lqi}", "bpm"]) | st.none(),
        "attrs": st.dictionaries(st.text(max_size=66), json_values, max_size=17),
    },
)
kinds = st.sampled_from([k.value for k in Kind]) | st.text(max_size=3)


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    doc = item(
        id=draw(st.uuids().map(str) | st.uuids().map(lambda u: u.hex) | st.text(max_size=4)),
        kind=draw(kinds),
        dev=draw(idents),
        site=draw(idents),
        ts=draw(timestamps()),
        gw_ts=draw(timestamps()),
        payload=draw(payloads),
    )
    for key in ("res", "room"):
        choice = draw(st.integers(0, 2))
        doc[key] = draw(idents) if choice == 0 else None
        if choice == 2:
            del doc[key]
    if draw(st.integers(0, 9)) == 0:
        doc.update(draw(st.dictionaries(st.sampled_from([*doc, "v", "extra"]), json_values)))
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items(), min_size=1, max_size=4))
@example([item()])
def test_fast_decoder_equals_reference(docs: list[dict[str, Any]]) -> None:
    check(batch(*docs))


@st.composite
def valid_items(draw: st.DrawFn) -> dict[str, Any]:
    code = draw(st.sampled_from(["heart_rate", "spo2", "steps", "motion", "room_temperature"]))
    value = {
        "heart_rate": st.integers(20, 250),
        "spo2": st.floats(50, 100),
        "steps": st.integers(0, 100_000),
        "motion": st.sampled_from([0, 1]),
        "room_temperature": st.floats(-40, 70),
    }[code]
    when = NOW - timedelta(seconds=draw(st.floats(0, 29 * 86400)))
    return item(
        id=str(draw(st.uuids())),
        ts=when.isoformat(),
        gw_ts=draw(st.sampled_from([when, NOW])).isoformat(),
        payload={"code": code, "value": draw(value)},
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(valid_items(), min_size=1, max_size=20))
def test_valid_batches_take_the_fast_path(docs: list[dict[str, Any]]) -> None:
    raw = batch(*docs)
    assert fast_decode(raw, GW, NOW) is not None
    assert len(check(raw).items) == len(docs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes(raw: bytes) -> None:
    check(raw)
