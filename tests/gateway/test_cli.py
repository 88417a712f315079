"""``carecircle gateway status`` reads the queue file; ``run`` refuses bad settings."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from carecircle.gateway.outbox import Item, Lane, Outbox

CLI = "from carecircle.common.cli import run; run()"


def carecircle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=60
    )


def test_status_prints_queue_depth_per_lane(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    q = Outbox(path)
    q.enqueue([Item(Lane.ALARM, str(uuid.uuid4()), b"{}", 1.0)])
    q.enqueue([Item(Lane.ROUTINE, str(uuid.uuid4()), b"{}", 2.0) for _ in range(4)])
    q.save_counters({"received": 5, "dead_letters": 1})
    q.close()
    out = carecircle("gateway", "status", "--queue", str(path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["depth"] == 5
    assert doc["lanes"] == {"alarm": 1, "status": 0, "deadletter": 0, "routine": 4}
    assert doc["counters"] == {"received": 5, "dead_letters": 1}
    text = carecircle("gateway", "status", "--queue", str(path))
    assert "5 waiting" in text.stdout and "alarm=1" in text.stdout


def test_status_of_missing_queue_and_run_with_bad_config(tmp_path: Path) -> None:
    missing = carecircle("gateway", "status", "--queue", str(tmp_path / "nope.sqlite3"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    cfg = tmp_path / "c.toml"
    cfg.write_text('[gateway]\nmqtt_url = "http://x"\n')
    bad = carecircle("gateway", "run", "--config", str(cfg))
    assert bad.returncode == 2 and "mqtt_url" in bad.stderr
