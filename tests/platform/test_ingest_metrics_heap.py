"""The worker's heap gauges follow what the process keeps (bench/ingest_memory.py reads them)."""

from __future__ import annotations

import ctypes
import gc
import sys

import pytest
from prometheus_client import generate_latest

from carecircle.platform.ingest.metrics import IngestMetrics


def page(metrics: IngestMetrics) -> dict[str, float]:
    out = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith("cc_process_"):
            name, value = line.split()
            out[name] = float(value)
    return out


def test_python_blocks_rise_with_kept_objects_and_fall_when_freed() -> None:
    metrics = IngestMetrics()
    # earlier tests' cyclic garbage would be freed by a collection the 100k lists trigger
    gc.collect()
    gc.disable()
    try:
        before = page(metrics)["cc_process_python_blocks"]
        kept = [[i] for i in range(100_000)]  # 100k small lists, each a block of its own
        during = page(metrics)["cc_process_python_blocks"]
        del kept
        after = page(metrics)["cc_process_python_blocks"]
    finally:
        gc.enable()
    assert during - before >= 100_000
    assert during - after >= 100_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallinfo2")
def test_malloc_in_use_follows_a_large_c_allocation() -> None:
    metrics = IngestMetrics()
    before = page(metrics)
    assert "cc_process_malloc_in_use_bytes" in before, "glibc's mallinfo2 not found"
    buf = ctypes.create_string_buffer(64 * 2**20)  # malloc'd by ctypes, not Python's allocator
    during = page(metrics)["cc_process_malloc_in_use_bytes"]
    del buf
    after = page(metrics)["cc_process_malloc_in_use_bytes"]
    assert during - before["cc_process_malloc_in_use_bytes"] >= 64 * 2**20
    assert during - after >= 64 * 2**20
