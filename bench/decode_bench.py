"""Decoding gateway batches in one process: the ingest fast path against pydantic models.

The same MQTT batch messages as the ingest section (500 readings each) are decoded by

* ``pydantic_models``: the contract's pydantic models validating the whole batch in one
  pydantic-core JSON call (what the ingest worker did before the fast path: the
  cheapest way to get the same objects from pydantic);
* ``fast_path``: ``carecircle.platform.ingest.decode.decode`` (msgspec + checks, into
  light ``Item`` structs equal to those envelopes, no pydantic object per reading), as
  the worker runs it;

alternately, several times, counting this process's CPU time.  Both run under
Python's default garbage collector settings (the worker's own tuning is measured in
the ingest section).  No broker, no database.
"""

from __future__ import annotations

import gc
import statistics
import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bench import ingest_bench
from carecircle.common.contract import MAX_BATCH_ITEMS, Envelope
from carecircle.platform.ingest.decode import decode


class _ModelBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    gw: str
    items: list[Envelope] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


_models = TypeAdapter(_ModelBatch)


def run(readings: int = 50_000, repeats: int = 5) -> dict[str, float]:
    messages, _ = ingest_bench.make_messages(50, 4, readings, 500)
    payloads = [p for _, p in messages]
    now = datetime.now(UTC)
    n = sum(len(decode(p, topic_gateway=None, now=now).items) for p in payloads)
    assert n == readings, f"fast path decoded {n} of {readings}"
    assert sum(len(_models.validate_json(p).items) for p in payloads) == readings

    def pydantic_models() -> None:
        for p in payloads:
            _models.validate_json(p)

    def fast_path() -> None:
        for p in payloads:
            decode(p, topic_gateway=None, now=now)

    times: dict[str, list[float]] = {"pydantic_models": [], "fast_path": []}
    for _ in range(repeats):
        for name, fn in (("pydantic_models", pydantic_models), ("fast_path", fast_path)):
            gc.collect()
            t0 = time.process_time()
            fn()
            times[name].append(1e6 * (time.process_time() - t0) / readings)
    models = statistics.median(times["pydantic_models"])
    fast = statistics.median(times["fast_path"])
    return {
        "pydantic_models_us_per_reading": models,
        "fast_path_us_per_reading": fast,
        "speedup": models / fast,
    }
