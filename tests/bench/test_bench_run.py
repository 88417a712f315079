"""`python -m bench.run` runs a section end to end and writes its report (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_models_section_writes_a_report(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "models", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[models]" in out.stdout
    report = json.loads((tmp_path / "latest.json").read_text())
    assert {"machine", "repeats", "quick", "sections"} <= report.keys()
    machine = report["machine"]
    expected = {"cores", "memory_gib", "commit", "postgresql", "mosquitto", "packages"}
    assert expected <= machine.keys()
    models = report["sections"]["models"]
    assert models["residents"] == 50
    train = models["train"]
    assert len(train["runs"]) == 1
    assert train["median"]["train_s"] > 0
    assert train["median"]["score_resident_hours_per_s"] > 0
    assert list(tmp_path.glob("bench-*.json"))


def test_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """The same parser as ``python -m bench.run`` (run as a process above), in this process:
    refused before any section or database is touched."""
    from bench.run import main

    with pytest.raises(SystemExit) as exit_:
        main(["--only", "nope"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
