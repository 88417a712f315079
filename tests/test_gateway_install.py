"""The gateway installs on a small edge box without the platform's heavy dependencies."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"fastapi", "scikit-learn", "psycopg", "psycopg-binary", "uvicorn", "numpy"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_install_gateway_alone(tmp_path: Path) -> None:
    env_dir = tmp_path / "edge"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(ROOT / "gateway")],
        check=True,
        capture_output=True,
        text=True,
    )
    listed = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=freeze"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "carecircle-gateway" in installed and "carecircle-common" in installed
    assert not (installed & HEAVY), installed & HEAVY
    help_out = subprocess.run(
        [str(env_dir / "bin" / "carecircle"), "gateway", "--help"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "gateway" in help_out.stdout
    top = subprocess.run(
        [str(env_dir / "bin" / "carecircle"), "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    commands = {
        line.split()[0] for line in top.split("Commands:", 1)[1].splitlines() if line.strip()
    }
    assert commands == {"gateway"}, commands
    assert sys.version_info >= (3, 11)
