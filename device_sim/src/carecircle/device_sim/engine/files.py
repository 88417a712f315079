"""Writing a generated stream and its ground truth to files (batch evaluation)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from carecircle.device_sim.engine.parallel import ParallelSimulation
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.incidents.model import count_by_kind, ground_truth_lines
from carecircle.device_sim.simtime import iso_utc

#: JSON string quoting (the C implementation json.dumps uses for str, without the overhead).
_quote: Callable[[str], str] = encode_basestring

STREAM_FILE = "stream.jsonl"
TRUTH_FILE = "ground_truth.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Summary:
    messages: int
    stream_sha256: str
    truth_sha256: str
    incidents: dict[str, int]
    devices: int
    sites: int
    residents: int
    start: str
    end: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stream_line(t: int, topic: str, payload: str, retain: bool) -> str:
    """One stream line: ``{"t": epoch ms, "topic": …, "retain": bool, "payload": str}``."""
    return (
        f'{{"t":{t},"topic":{_quote(topic)},"retain":{"true" if retain else "false"},'
        f'"payload":{_quote(payload)}}}\n'
    )


def generate_files(
    sim: Simulation | ParallelSimulation,
    out_dir: Path | None,
    *,
    write_stream: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Run ``sim`` to its end; write the stream, ground truth and a summary into ``out_dir``.

    The sha256 digests are over the stream lines and ground-truth lines exactly as
    written, so two runs can be compared without keeping the files.
    """
    if sim.end_ms is None:
        raise ValueError("a generated stream needs an end time")
    began = time.monotonic()
    h = hashlib.sha256()
    n = 0
    stream_fh = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if write_stream:
            stream_fh = (out_dir / STREAM_FILE).open("w", encoding="utf-8")
    try:
        buf: list[str] = []
        for t, topic, payload, retain in sim:
            line = stream_line(t, topic, payload, retain)
            buf.append(line)
            n += 1
            if len(buf) >= 20_000:
                chunk = "".join(buf)
                h.update(chunk.encode())
                if stream_fh is not None:
                    stream_fh.write(chunk)
                buf.clear()
                if progress is not None:
                    progress(n, t)
        chunk = "".join(buf)
        h.update(chunk.encode())
        if stream_fh is not None:
            stream_fh.write(chunk)
    finally:
        if stream_fh is not None:
            stream_fh.close()
    incidents = sim.incidents()
    truth = "".join(line + "\n" for line in ground_truth_lines(incidents))
    if out_dir is not None:
        (out_dir / TRUTH_FILE).write_text(truth, encoding="utf-8")
    w = sim.world
    summary = Summary(
        messages=n,
        stream_sha256=h.hexdigest(),
        truth_sha256=hashlib.sha256(truth.encode()).hexdigest(),
        incidents={k: v for k, v in count_by_kind(incidents).items()},
        devices=w.device_count,
        sites=len(w.sites),
        residents=len(w.site_of_resident),
        start=iso_utc(sim.start_ms),
        end=iso_utc(sim.end_ms),
        seconds=round(time.monotonic() - began, 2),
    )
    if out_dir is not None:
        (out_dir / SUMMARY_FILE).write_text(
            json.dumps(summary.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return summary
