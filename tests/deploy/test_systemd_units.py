"""deploy/systemd: units parse, are hardened, run real commands, and pass systemd-analyze."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from carecircle.platform.demo.components import command_exists

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED_CARECIRCLE = "/opt/carecircle/venv/bin/carecircle"
#: The process commands pinned in the brief, one unit each.
EXPECTED = {
    "carecircle-platform.service": ("platform", "serve"),
    "carecircle-ingest@.service": ("platform", "ingest"),
    "carecircle-scheduler.service": ("platform", "scheduler"),
    "carecircle-dispatcher.service": ("platform", "dispatcher"),
    "carecircle-gateway.service": ("gateway", "run"),
}


def parse(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def exec_argv(path: Path) -> list[str]:
    return shlex.split(parse(path)["Service"]["ExecStart"])


def test_every_expected_unit_is_there() -> None:
    assert {p.name for p in SERVICES} == set(EXPECTED)
    assert (UNITS / "carecircle.target").exists()


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_unit_structure_and_hardening(path: Path) -> None:
    unit = parse(path)
    assert unit["Unit"]["Description"].startswith("CareCircle")
    service = unit["Service"]
    assert service["User"] not in {"root", "0"}
    assert service["Type"] == "exec"
    assert service["Restart"] in {"on-failure", "always"}
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert service["StateDirectory"]
    argv = exec_argv(path)
    assert argv[0] == INSTALLED_CARECIRCLE
    assert tuple(argv[1:]) == EXPECTED[path.name]
    assert unit["Install"]["WantedBy"]


def test_target_wants_only_units_that_exist() -> None:
    target = (UNITS / "carecircle.target").read_text()
    wanted = [
        name
        for line in target.splitlines()
        if line.startswith("Wants=")
        for name in line.split("=", 1)[1].split()
    ]
    assert wanted
    for name in wanted:
        template = name.split("@", 1)[0] + "@.service" if "@" in name else name
        assert (UNITS / template).exists(), name


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_execstart_is_an_installed_cli_command(path: Path) -> None:
    command = EXPECTED[path.name]
    if not command_exists(command):
        pytest.skip(f"`carecircle {' '.join(command)}` is not on this branch yet")
    carecircle = Path(sys.executable).parent / "carecircle"
    out = subprocess.run(
        [str(carecircle), *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """Real systemd parsing: any unknown key or bad value is reported and fails the test."""
    carecircle = Path(sys.executable).parent / "carecircle"
    names = []
    for unit in [*SERVICES, UNITS / "carecircle.target"]:
        text = unit.read_text().replace(INSTALLED_CARECIRCLE, str(carecircle))
        name = unit.name.replace("@.", "@1.")
        (tmp_path / name).write_text(text)
        names.append(f"./{name}")
    # The target refers to instances @1/@2: give systemd the template beside them.
    (tmp_path / "carecircle-ingest@.service").write_text(
        (UNITS / "carecircle-ingest@.service").read_text()
    )
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = (out.stdout + out.stderr).strip()
    assert out.returncode == 0, report
    assert report == "", report
