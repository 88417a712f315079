"""``carecircle demo`` as a user runs it: services up, schema migrated, Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from carecircle.platform.demo.components import DEMO_COMPONENTS, Component, command_exists
from carecircle.platform.demo.runner import DemoOptions, run_demo
from carecircle.platform.demo.services import system_mosquitto, system_postgres

CARECIRCLE = Path(sys.executable).parent / "carecircle"

pytestmark = pytest.mark.skipif(
    system_postgres() is None or system_mosquitto() is None,
    reason="needs system PostgreSQL binaries and mosquitto",
)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc, following parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> list[str]:
    lines: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if marker in line:
                done.set()
                return
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(timeout_s)
    return lines


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gateway_files_give_each_site_its_own_queue(folder: Path, sites: int) -> None:
    """The generated settings of the gateway processes: every site once, own queue."""
    from carecircle.common.settings import load_settings
    from carecircle.gateway.settings import GatewaySettings

    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CARECIRCLE_")}
    try:
        gateways = [
            g
            for f in sorted(folder.glob("gateways-*.toml"))
            for g in load_settings(GatewaySettings, f).gateways()
        ]
    finally:
        os.environ.update(env_backup)
    assert len({g.gateway_id for g in gateways}) == len(gateways) == sites
    assert len({g.queue_path for g in gateways}) == sites
    assert all(g.queue_path.parent == folder for g in gateways)
    assert all(g.gateway_id in g.zigbee2mqtt_base for g in gateways)
    # the gateways have started: each has its own queue file
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(g.queue_path.exists() for g in gateways):
        time.sleep(0.2)
    assert all(g.queue_path.exists() for g in gateways)


def _value(lines: list[str], prefix: str) -> str:
    return next(line for line in lines if line.startswith(prefix)).split(None, 1)[1]


@pytest.mark.timeout(180)
def test_demo_starts_private_servers_migrates_and_stops_clean_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    proc = subprocess.Popen(
        [
            str(CARECIRCLE),
            "demo",
            "--workdir",
            str(tmp_path / ".demo"),
            "--no-install",
            "--households",
            "4",  # the default 50 is the slow fresh-clone test's
            "--gateway-processes",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = read_until(proc, "ready: press Ctrl-C", 120)
        assert any("ready: press Ctrl-C" in line for line in lines), "\n".join(lines)
        assert "system PostgreSQL" in _value(lines, "database:")
        assert "Mosquitto" in _value(lines, "broker:")
        assert "applied" in _value(lines, "schema:")
        db_url = _value(lines, "PostgreSQL:")
        with psycopg.connect(db_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
            assert row is not None and row[0] >= 2
        # The report is honest about what could not start.
        for row_ in DEMO_COMPONENTS:
            listed = any(f"carecircle {' '.join(row_.command)}" in line for line in lines)
            assert listed == (not command_exists(row_.command)), row_.name
        assert _value(lines, "dashboard:").endswith("/board")
        logins = [line.split() for line in lines if line.strip().startswith("login ")]
        assert [w[1:3] for w in logins] == [
            ["staff", "staff-demo"],
            ["family", "family-demo"],
            ["responder", "responder-demo"],
        ], lines
        running = _value(lines, "running:")
        # 4 households + day-care centre + nursing home: 6 gateways in 2 processes
        assert "6 gateways in 2 processes" in running and "simulator" in running, running
        gateway_procs = [p for p in descendants(proc.pid) if "gateway run" in _cmdline(p)]
        assert len(gateway_procs) == 2, running
        _gateway_files_give_each_site_its_own_queue(tmp_path / ".demo" / "gateways", 6)
        family = descendants(proc.pid)
        assert len(family) >= 2, "PostgreSQL and Mosquitto should be running"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "stopped: nothing left running" in out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in family):
            time.sleep(0.1)
        assert not [p for p in family if alive(p)]
        logs = tmp_path / ".demo" / "logs"
        assert {"demo.log", "postgres.log", "mosquitto.log", "migrate.log"} <= {
            p.name for p in logs.iterdir()
        }
        from carecircle.platform.demo.services import DemoPaths

        assert not DemoPaths.for_root(tmp_path / ".demo").runtime.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_configured_database_and_broker_are_used_instead(
    tmp_path: Path, fresh_database: Callable[[], str], mqtt_url: str, topic_root: str
) -> None:
    url = fresh_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    env.update(CARECIRCLE_DATABASE_URL=url, CARECIRCLE_MQTT_URL=mqtt_url)
    proc = subprocess.Popen(
        [
            str(CARECIRCLE),
            "demo",
            "--workdir",
            str(tmp_path / ".demo"),
            "--no-install",
            "--households",
            "2",
            "--topic-root",
            topic_root,  # the shared broker: this demo's simulator and gateways stay apart
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = read_until(proc, "ready: press Ctrl-C", 60)
        assert "CARECIRCLE_DATABASE_URL" in _value(lines, "database:")
        assert "CARECIRCLE_MQTT_URL" in _value(lines, "broker:")
        # no private servers; the platform components (e.g. the dispatcher) do run
        servers = {
            pid for pid in descendants(proc.pid) if _comm(pid).startswith(("postgres", "mosquitto"))
        }
        assert servers == set()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
            assert row is not None and row[0] >= 2
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_table_rows_run_when_their_command_exists(tmp_path: Path) -> None:
    """Setup and periodic rows run real commands; absent commands are listed, not faked."""
    rows = (
        Component("status", ("db", "status"), kind="setup", description="schema report"),
        Component("absent", ("platform", "no-such-command"), description="not installed"),
        Component("tick", ("db", "maintain"), kind="periodic", every_s=0.5),
    )
    said: list[str] = []
    stop = threading.Event()
    options = DemoOptions(
        workdir=tmp_path / ".demo",
        components=rows,
        first_incident_after_s=0.0,
        allow_install=False,
        grace_s=5,
    )
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CARECIRCLE_")}
    try:
        result: dict[str, object] = {}

        def run() -> None:
            result["state"] = run_demo(options, said.append, stop)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum("tick: run" in s for s in said) < 2:
            time.sleep(0.1)
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        os.environ.update(env_backup)
    state = result["state"]
    assert state.started == ["status"]  # type: ignore[attr-defined]
    assert [r.name for r in state.unavailable] == ["absent"]  # type: ignore[attr-defined]
    assert any(re.match(r"status: done \(\s+\d{4}_\w+\s+applied", s) for s in said), said
    assert sum("tick: run" in s for s in said) >= 2
    assert said[-1] == "stopped: nothing left running"
    maintain_log = (tmp_path / ".demo" / "logs" / "tick.log").read_text()
    assert '"backend"' in maintain_log


def test_an_incident_nobody_answered_is_tried_again_not_skipped(tmp_path: Path) -> None:
    """Status 3 from a periodic run (``sim scenario``: no simulator answered yet) retries
    the same run; any other failure moves on to the next."""
    rows = (
        Component(
            "tick",
            ("db", "status"),
            kind="periodic",
            every_s=60,  # a failed run is followed by another 5 s later
            # nothing listens on port 1: StoreUnavailable, exit status 3
            extra_env=(("CARECIRCLE_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/x"),),
        ),
    )
    said: list[str] = []
    stop = threading.Event()
    options = DemoOptions(
        workdir=tmp_path / ".demo", components=rows, first_incident_after_s=0.0,
        allow_install=False, grace_s=5,
    )  # fmt: skip
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CARECIRCLE_")}
    try:
        thread = threading.Thread(target=run_demo, args=(options, said.append, stop))
        thread.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum("tick failed (status 3)" in s for s in said) < 2:
            time.sleep(0.1)
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        os.environ.update(env_backup)
    assert sum("tick failed (status 3)" in s for s in said) >= 2, said
    starts = [s for s in said if s.startswith("tick: run")]
    assert starts and all(s == "tick: run 1 started" for s in starts), starts


def _dashboard_shows_a_live_alert(lines: list[str], deadline: float) -> None:
    """Sign in as the printed staff login; the board must list an alert on a resident."""
    import httpx

    board = _value(lines, "dashboard:")
    base = board.rsplit("/", 1)[0]
    staff = next(line.split() for line in lines if line.strip().startswith("login staff"))
    password = staff[staff.index("password") + 1]
    with httpx.Client(base_url=base, timeout=10) as client:
        r = client.post("/login", data={"username": staff[2], "password": password})
        assert r.status_code == 303 and r.headers["location"] == "/board", r.text
        page = client.get("/board")
        assert page.status_code == 200
        rows = ""
        while time.monotonic() < deadline:
            rows = client.get("/board/rows").text
            if re.search(r'id="alert-\d+".*?href="/residents/r-\d+"', rows, re.S):
                break
            time.sleep(2)
        found = re.search(r'href="/residents/(r-\d+)"', rows)
        assert found, f"no alert on a resident within the deadline:\n{rows}"
        resident = client.get(f"/residents/{found.group(1)}")
        assert resident.status_code == 200, resident.text


def _chromium_shows_a_live_alert(lines: list[str], deadline: float) -> None:
    """The same in a real headless Chromium: sign in, the board lists an alert row."""
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(chromedriver).exists()):
        print("\nchromium/chromium-driver not installed: the browser check did not run")
        return
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    board = _value(lines, "dashboard:")
    staff = next(line.split() for line in lines if line.strip().startswith("login staff"))
    profile = tempfile.mkdtemp(prefix="cc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", f"--user-data-dir={profile}", "--lang=en-US"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(30)
    try:
        driver.get(board + "?lang=en")  # not signed in: the login page
        driver.find_element(By.ID, "username").send_keys(staff[2])
        driver.find_element(By.ID, "password").send_keys(staff[staff.index("password") + 1])
        driver.find_element(By.ID, "login-submit").click()
        rows: list[object] = []
        while time.monotonic() < deadline:
            rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-id]")
            if rows:
                break
            time.sleep(1)
        assert rows, f"no alert row in Chromium:\n{driver.page_source[:3000]}"
        links = driver.find_elements(By.CSS_SELECTOR, "tr[data-id] a[href^='/residents/r-']")
        assert links, "the alert row names no resident"
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_make_demo_in_a_fresh_clone_and_ctrl_c(tmp_path: Path) -> None:
    """As a new user: clone, `make demo`, wait for it, Ctrl-C to the terminal's process group."""
    root = Path(__file__).resolve().parents[2]
    clone = tmp_path / "clone"
    _git("clone", "-q", str(root), str(clone), cwd=tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CARECIRCLE_", "VIRTUAL_ENV", "PYTHON"))
    }
    proc = subprocess.Popen(
        ["make", "demo", "DEMO_ARGS=--no-install"],
        cwd=clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    started_at = time.monotonic()
    try:
        lines = read_until(proc, "ready: press Ctrl-C", 780)
        assert any("ready: press Ctrl-C" in line for line in lines), "\n".join(lines[-40:])
        assert (clone / ".venv" / "bin" / "carecircle").exists()
        with psycopg.connect(_value(lines, "PostgreSQL:"), connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
            assert row is not None and row[0] >= 2
        ready_at = time.monotonic()
        running = _value(lines, "running:")
        assert "52 gateways in 2 processes" in running, running  # 50 households + 2 facilities
        _dashboard_shows_a_live_alert(lines, deadline=ready_at + 120)
        alert_at = time.monotonic()
        _chromium_shows_a_live_alert(lines, deadline=ready_at + 150)
        print(
            f"\nmake demo in a fresh clone: ready after {ready_at - started_at:.0f} s "
            f"(virtual environment included), first alert on the board "
            f"{alert_at - ready_at:.0f} s after ready"
        )
        family = descendants(proc.pid)
        assert len(family) >= 15  # demo, servers, platform, 2 gateway processes, simulator
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=60)
        assert "stopped: nothing left running" in out, out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in family):
            time.sleep(0.1)
        assert not [p for p in family if alive(p)]
        assert (clone / ".demo" / "logs" / "demo.log").exists()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True
        ).stdout
        assert status == "", f"make demo left untracked or changed files:\n{status}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.parametrize("after_s", [0.0, 0.5, 1.5])
def test_ctrl_c_while_starting_leaves_nothing(tmp_path: Path, after_s: float) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    proc = subprocess.Popen(
        [str(CARECIRCLE), "demo", "--workdir", str(tmp_path / ".demo"), "--no-install"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        first = read_until(proc, "logs:", 60)  # the demo has taken over Ctrl-C
        assert first and first[-1].startswith("logs:"), first
        seen: set[int] = set()
        deadline = time.monotonic() + after_s
        while True:
            seen |= descendants(proc.pid)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "stopped: nothing left running" in out, out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in seen):
            time.sleep(0.1)
        assert not [p for p in seen if alive(p)], out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("allow_install", [True, False])
def test_no_mosquitto_and_none_installable_stops_with_a_reason_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_install: bool
) -> None:
    """No broker binary, apt-get impossible: the demo says why and how, starts no
    pure-Python broker that its MQTT 5 components could not use, stops what it started."""
    from carecircle.platform.demo import services

    tried: list[bool] = []
    monkeypatch.setattr(services, "system_mosquitto", lambda: None)
    monkeypatch.setattr(services, "apt_install_mosquitto", lambda _notify: tried.append(True))
    for key in [k for k in os.environ if k.startswith("CARECIRCLE_")]:
        monkeypatch.delenv(key)
    said: list[str] = []
    options = DemoOptions(workdir=tmp_path / ".demo", allow_install=allow_install, grace_s=5)
    with pytest.raises(services.ServiceUnavailable) as err:
        run_demo(options, said.append, threading.Event())
    assert tried == ([True] if allow_install else [])
    message = str(err.value)
    assert "no MQTT broker" in message and "apt-get install mosquitto" in message
    assert "CARECIRCLE_MQTT_URL" in message and "MQTT 3.1.1" in message
    assert err.value.exit_code == 3
    assert any(s.startswith("database:") for s in said), said  # PostgreSQL had started…
    assert said[-1] == "stopped: nothing left running"  # …and was stopped
    assert not any(s.startswith(("broker:", "ready")) for s in said), said
    logs = {p.name for p in (tmp_path / ".demo" / "logs").iterdir()}
    assert "postgres.log" in logs and not any("mqtt" in n or "mosquitto" in n for n in logs)


def test_second_demo_from_the_same_directory_is_refused(tmp_path: Path) -> None:
    import fcntl

    workdir = tmp_path / ".demo"
    workdir.mkdir()
    with (workdir / "demo.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out = subprocess.run(
            [str(CARECIRCLE), "demo", "--workdir", str(workdir), "--no-install"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert "another `carecircle demo` is running" in out.stderr
    assert not (workdir / "logs").exists()
