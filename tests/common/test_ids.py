"""Message ids are UUIDv7: right version and variant, the clock in the top 48 bits, and
strictly increasing from one maker — across threads, within a millisecond, past the
counter's end and when the clock steps back."""

from __future__ import annotations

import threading
import uuid

from carecircle.common.contract import Envelope, IdMaker, id_time_ms, new_id


class _Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_layout_version_variant_and_time() -> None:
    clock = _Clock(1_764_000_000_123)
    make = IdMaker(clock_ms=clock)
    u = make()
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert id_time_ms(u) == 1_764_000_000_123
    assert id_time_ms(uuid.uuid4()) is None
    assert str(u)[:13] == f"{1_764_000_000_123:012x}"[:8] + "-" + f"{1_764_000_000_123:012x}"[8:]


def test_increasing_within_a_millisecond_past_the_counter_and_when_the_clock_goes_back() -> None:
    clock = _Clock(1_000)
    make = IdMaker(clock_ms=clock)
    ids = [make() for _ in range(10_000)]  # > 4,096: the counter overflows into the next ms
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert id_time_ms(ids[-1]) is not None and id_time_ms(ids[-1]) > 1_000  # type: ignore[operator]
    last = ids[-1]
    clock.ms = 500  # NTP stepped the clock back
    back = make()
    assert back > last
    clock.ms = 10_000
    later = make()
    assert later > back and id_time_ms(later) == 10_000


def test_random_tail_differs_between_makers_of_the_same_millisecond() -> None:
    a, b = IdMaker(clock_ms=_Clock(7)), IdMaker(clock_ms=_Clock(7))
    assert a() != b()


def test_threads_get_distinct_increasing_ids() -> None:
    make = IdMaker()
    per_thread: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def run(out: list[uuid.UUID]) -> None:
        out.extend(make() for _ in range(5_000))

    threads = [threading.Thread(target=run, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [u for out in per_thread for u in out]
    assert len(set(every)) == 20_000
    assert all(out == sorted(out) for out in per_thread)


def test_the_envelope_and_the_process_maker_accept_them() -> None:
    env = Envelope.model_validate(
        {
            "id": new_id(),
            "kind": "reading",
            "gw": "gw-1",
            "dev": "d-1",
            "site": "s-1",
            "ts": "2026-12-03T07:00:00+08:00",
            "gw_ts": "2026-12-03T07:00:00+08:00",
            "payload": {"code": "heart_rate", "value": 61},
        }
    )
    assert env.id.version == 7
