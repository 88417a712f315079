"""`make audit`: classification of pip-audit's JSON report (recorded samples, written by hand)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cc_tools_audit", ROOT / "tools" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


audit = _load_tool()

VULNERABLE: dict[str, Any] = {
    "dependencies": [
        {
            "name": "requests",
            "version": "2.19.0",
            "vulns": [
                {
                    "id": "PYSEC-2018-28",
                    "fix_versions": ["2.20.0"],
                    "aliases": ["CVE-2018-18074"],
                    "description": "Authorization header leaked on redirect",
                },
            ],
        },
        {"name": "urllib3", "version": "2.2.1", "vulns": []},
        {
            "name": "carecircle-platform",
            "skip_reason": "Dependency not found on PyPI and could "
            "not be audited: carecircle-platform (0.1.0)",
        },
        {
            "name": "pillow",
            "version": "9.0.0",
            "vulns": [
                {"id": "GHSA-xxxx-yyyy-zzzz", "fix_versions": [], "aliases": []},
            ],
        },
    ],
    "fixes": [],
}
SKIPPED: dict[str, Any] = {
    "dependencies": [
        {
            "name": "anyio",
            "skip_reason": "Dependency not found on PyPI and could not be audited: anyio (4.16.0)",
        },
        {"name": "fastapi", "version": "0.110.0", "vulns": []},
    ],
    "fixes": [],
}
NONE: dict[str, Any] = {
    "dependencies": [
        {"name": "click", "version": "8.1.7", "vulns": []},
        {"name": "psycopg", "version": "3.2.1", "vulns": []},
    ],
    "fixes": [],
}


def test_vulnerabilities_fail_and_are_listed() -> None:
    result = audit.classify(VULNERABLE)
    assert result.failed
    assert result.vulnerable == [
        ("requests==2.19.0", "PYSEC-2018-28", ["2.20.0"]),
        ("pillow==9.0.0", "GHSA-xxxx-yyyy-zzzz", []),
    ]
    assert "carecircle-platform" not in " ".join(result.skipped + result.audited)
    text = audit.summary(result)
    assert "VULNERABLE requests==2.19.0: PYSEC-2018-28 (fixed in 2.20.0)" in text
    assert "VULNERABLE pillow==9.0.0: GHSA-xxxx-yyyy-zzzz (no fix released)" in text


def test_unknown_versions_are_skipped_not_failed() -> None:
    result = audit.classify(SKIPPED)
    assert not result.failed
    assert result.skipped == ["anyio==4.16.0"]
    assert result.audited == ["fastapi==0.110.0"]
    assert "skipped 1" in audit.summary(result)


def test_clean_report_passes() -> None:
    result = audit.classify(NONE)
    assert not result.failed and len(result.audited) == 2 and not result.skipped
    assert "warning" not in audit.summary(result)


def test_nothing_audited_warns() -> None:
    result = audit.classify({"dependencies": SKIPPED["dependencies"][:1]})
    assert "no package could be audited" in audit.summary(result)


@pytest.mark.parametrize(("report", "code"), [(VULNERABLE, 1), (SKIPPED, 0), (NONE, 0)])
def test_exit_code_from_a_saved_report(tmp_path: Path, report: dict[str, Any], code: int) -> None:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(report))
    assert audit.main(["--report", str(path)]) == code


def test_unreachable_pypi_warns_and_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "PROBE_URL", "http://127.0.0.1:9/pypi/pip/json")
    assert audit.main([]) == 0
    assert "unreachable" in capsys.readouterr().err


def _fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in for ``python -m pip_audit …`` (the one edge we cannot run offline)."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_pip_audit_losing_the_network_mid_run_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "pypi_reachable", lambda timeout_s=10.0: True)
    python = _fake_python(
        tmp_path,
        "echo \"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org')\" >&2\n"
        "exit 1\n",
    )
    assert audit.main(["--python", python]) == 0
    assert "could not reach PyPI" in capsys.readouterr().err


def test_pip_audit_report_is_read_from_its_output_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "pypi_reachable", lambda timeout_s=10.0: True)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(VULNERABLE))
    # the fake copies the sample to the path given after --output, exits 1 like pip-audit
    python = _fake_python(
        tmp_path,
        f'while [ "$1" != "--output" ]; do shift; done\ncp "{sample}" "$2"\nexit 1\n',
    )
    assert audit.main(["--python", python]) == 1
    assert "VULNERABLE requests==2.19.0" in capsys.readouterr().out


def test_pip_audit_broken_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "pypi_reachable", lambda timeout_s=10.0: True)
    python = _fake_python(tmp_path, "echo 'No module named pip_audit' >&2\nexit 1\n")
    with pytest.raises(SystemExit, match="pip-audit failed"):
        audit.main(["--python", python])
