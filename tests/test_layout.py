"""The repository layout keeps `platform/` from shadowing the standard library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ["common", "gateway", "platform", "device_sim", "ml"]


def test_stdlib_platform_module_is_not_shadowed_from_repo_root() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() in {"Linux", "Darwin", "Windows"}


def test_pytest_collection_works_from_repo_root() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "tests collected" in out.stdout or "tests/" in out.stdout


def test_namespace_has_no_init_files() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    for component in COMPONENTS:
        assert not (ROOT / component / "__init__.py").exists()
        assert not (ROOT / component / "src" / "carecircle" / "__init__.py").exists(), component
        assert (ROOT / component / "pyproject.toml").is_file()


def test_components_import_under_one_namespace() -> None:
    import carecircle.common
    import carecircle.device_sim
    import carecircle.gateway
    import carecircle.ml
    import carecircle.platform

    paths = {
        Path(m.__file__).resolve().parents[2].parent.name  # type: ignore[arg-type]
        for m in (
            carecircle.common,
            carecircle.gateway,
            carecircle.platform,
            carecircle.device_sim,
            carecircle.ml,
        )
    }
    assert paths == set(COMPONENTS)
