"""The demo supervisor: health checks, logs, restarts, and a stop that leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from carecircle.platform.demo.supervisor import (
    LogLine,
    PortOpen,
    ProcessFailed,
    ProcessSpec,
    RestartPolicy,
    Supervisor,
    free_port,
)

PY = sys.executable
SLEEP = [PY, "-c", "import time; time.sleep(60)"]


def alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(predicate: object, timeout_s: float = 10.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


SUPERVISOR_PROGRAM = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from carecircle.platform.demo.supervisor import (
        LogLine, ProcessSpec, Supervisor, stop_requested)

    PY = sys.executable
    log_dir = Path(sys.argv[1])
    sleeper = [PY, "-c", "import time; time.sleep(60)"]
    # a child that ignores SIGTERM, and one that leaves a grandchild in its group
    stubborn = [PY, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                " print('armed', flush=True); time.sleep(60)"]
    parent = [PY, "-c", "import subprocess, sys, time;"
              " p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
              " print('grandchild', p.pid, flush=True); time.sleep(60)"]
    sup = Supervisor(log_dir, grace_s=1.0)
    with stop_requested() as stop:
        for i in range(3):
            sup.start(ProcessSpec(f"sleeper-{i}", sleeper))
        sup.start_healthy(ProcessSpec("stubborn", stubborn, health=LogLine("armed")))
        sup.start_healthy(ProcessSpec("parent", parent, health=LogLine("grandchild")))
        grandchild = int(sup.tail("parent")[-1].split()[1])
        pids = [sup.pid(n) for n in sup.running()] + [grandchild]
        print(json.dumps(pids), flush=True)
        while not stop.wait(0.1):
            sup.poll()
        sup.close()
    print("done", flush=True)
    """
)


def test_sigint_to_supervisor_leaves_no_child_or_grandchild(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [PY, "-c", SUPERVISOR_PROGRAM, str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 6
        assert all(alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "done" in out
        assert wait_until(lambda: not any(alive(pid) for pid in pids), 10), [
            pid for pid in pids if alive(pid)
        ]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sigterm_also_stops_everything(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [PY, "-c", SUPERVISOR_PROGRAM, str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert wait_until(lambda: not any(alive(pid) for pid in pids), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_logs_are_prefixed_in_demo_log_and_kept_per_process(tmp_path: Path) -> None:
    with Supervisor(tmp_path, grace_s=1) as sup:
        out = sup.run_oneshot(
            ProcessSpec("hello", [PY, "-c", "print('one'); print('two')"], oneshot=True),
            timeout_s=20,
        )
        assert out == ("one", "two")
    combined = (tmp_path / "demo.log").read_text().splitlines()
    assert [line.split("| ", 1) for line in combined] == [
        ["hello         ", "one"],
        ["hello         ", "two"],
    ]
    assert (tmp_path / "hello.log").read_text() == "one\ntwo\n"


def test_failing_oneshot_raises_with_its_last_output(tmp_path: Path) -> None:
    with Supervisor(tmp_path, grace_s=1) as sup, pytest.raises(ProcessFailed) as info:
        sup.run_oneshot(
            ProcessSpec(
                "bad", [PY, "-c", "import sys; print('broken config'); sys.exit(3)"], oneshot=True
            ),
            timeout_s=20,
        )
    assert "status 3" in str(info.value)
    assert "broken config" in str(info.value)


def test_child_dying_before_healthy_is_reported(tmp_path: Path) -> None:
    with Supervisor(tmp_path, grace_s=1) as sup, pytest.raises(ProcessFailed) as info:
        sup.start_healthy(
            ProcessSpec(
                "early",
                [PY, "-c", "print('cannot bind'); raise SystemExit(1)"],
                health=LogLine("ready"),
                health_timeout_s=10,
            )
        )
    assert "exited with status 1 before it was ready" in str(info.value)
    assert "cannot bind" in str(info.value)


def test_health_timeout(tmp_path: Path) -> None:
    with Supervisor(tmp_path, grace_s=1) as sup:
        with pytest.raises(ProcessFailed, match="not ready within"):
            sup.start_healthy(
                ProcessSpec("slow", SLEEP, health=LogLine("never"), health_timeout_s=0.5)
            )
        pid = sup.pid("slow")
    assert wait_until(lambda: not alive(pid), 5)


def test_port_health_check(tmp_path: Path) -> None:
    port = free_port()
    server = [
        PY,
        "-c",
        "import socket, time; s = socket.socket(); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"time.sleep(0.3); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)",
    ]
    with Supervisor(tmp_path, grace_s=1) as sup:
        sup.start_healthy(
            ProcessSpec("server", server, health=PortOpen("127.0.0.1", port), health_timeout_s=10)
        )
        assert sup.running() == ["server"]
    assert sup.running() == []


def test_restart_policy_is_limited(tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    crash = [PY, "-c", f"open({str(counter)!r}, 'a').write('x'); raise SystemExit(2)"]
    with Supervisor(tmp_path, grace_s=1) as sup:
        sup.start(ProcessSpec("crashy", crash, restart=RestartPolicy(max_restarts=2, backoff_s=0)))
        reports = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            r.name == "crashy" and not r.restarted for r in reports
        ):
            reports += sup.poll()
            time.sleep(0.05)
    assert [r.restarted for r in reports] == [True, True, False]
    assert all(r.returncode == 2 for r in reports)
    assert counter.read_text() == "xxx"


def test_stubborn_child_is_killed_after_grace(tmp_path: Path) -> None:
    stubborn = [
        PY,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('armed', flush=True); time.sleep(60)",
    ]
    sup = Supervisor(tmp_path, grace_s=0.5)
    sup.start_healthy(ProcessSpec("stubborn", stubborn, health=LogLine("armed")))
    pid = sup.pid("stubborn")
    started = time.monotonic()
    sup.close()
    assert not alive(pid)
    assert time.monotonic() - started < 10


def test_children_run_in_their_own_process_group(tmp_path: Path) -> None:
    with Supervisor(tmp_path, grace_s=1) as sup:
        sup.start(ProcessSpec("sleeper", SLEEP))
        pid = sup.pid("sleeper")
        assert os.getpgid(pid) == pid != os.getpgid(0)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="name"):
        ProcessSpec("has space", SLEEP)
    with pytest.raises(ValueError, match="empty"):
        ProcessSpec("empty", [])


def test_stop_event_cuts_short_a_oneshot_and_a_health_wait(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    with Supervisor(tmp_path, grace_s=1, stop=stop) as sup:
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with pytest.raises(ProcessFailed, match="stopped while long was running"):
            sup.run_oneshot(ProcessSpec("long", SLEEP, oneshot=True), timeout_s=60)
        assert time.monotonic() - started < 10
        assert not alive(sup.pid("long"))
        with pytest.raises(ProcessFailed, match="stopped while waiting for slow"):
            sup.start_healthy(
                ProcessSpec("slow", SLEEP, health=LogLine("never"), health_timeout_s=60)
            )
