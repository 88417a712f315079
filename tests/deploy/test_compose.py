"""deploy/compose.yaml and its Dockerfile: parse, official images, files and commands exist.

Docker cannot run here; the broker configuration the file mounts is exercised on a real
Mosquitto by test_mosquitto_acl.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from carecircle.platform.demo.components import command_exists

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PINNED = {
    ("db", "migrate"),
    ("platform", "serve"),
    ("platform", "ingest"),
    ("platform", "scheduler"),
    ("platform", "dispatcher"),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_official_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "timescaledb",
        "mosquitto",
        "migrate",
        "api",
        "ingest",
        "scheduler",
        "dispatcher",
    }
    assert re.fullmatch(r"timescale/timescaledb:[\w.]+-pg\d+", services["timescaledb"]["image"])
    assert re.fullmatch(r"eclipse-mosquitto:2(\.\d+)*", services["mosquitto"]["image"])
    assert services["ingest"]["deploy"]["replicas"] >= 2


def test_platform_services_run_pinned_commands(compose: dict[str, Any]) -> None:
    platform = {name: svc for name, svc in compose["services"].items() if "build" in svc}
    assert set(platform) == {"migrate", "api", "ingest", "scheduler", "dispatcher"}
    for name, svc in platform.items():
        assert tuple(svc["command"]) in PINNED, name
        env = svc["environment"]
        assert env["CARECIRCLE_DATABASE_URL"].startswith("postgresql://")
        assert env["CARECIRCLE_MQTT_URL"].startswith("mqtt://platform:")
    # migrate runs before the others, after the database is healthy
    assert compose["services"]["migrate"]["depends_on"]["timescaledb"]["condition"] == (
        "service_healthy"
    )
    assert compose["services"]["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert command_exists(("db", "migrate"))


def test_depends_on_names_existing_services(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    for svc in compose["services"].values():
        assert set(svc.get("depends_on", {})) <= names


def test_mounted_files_exist_or_are_made_by_the_secrets_script(compose: dict[str, Any]) -> None:
    script = (DEPLOY / "compose" / "make-secrets.sh").read_text()
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith("./"):
                assert source in compose["volumes"], source
                continue
            if "/secrets/" in source:
                assert Path(source).name in script, source
                continue
            assert (DEPLOY / source).exists(), source


def test_required_variables_are_in_the_example_env(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "compose.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert required == example
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/.env" in ignored and "deploy/compose/secrets/" in ignored


def test_dockerfile_copies_components_that_exist() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1] for line in lines if line.startswith("COPY ")]
    assert copies
    for source in copies:
        assert (ROOT / source / "pyproject.toml").exists(), source
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
