"""`make audit`: classification of pip-audit's JSON report (recorded samples, written by hand)."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    assert not result.performed
    assert "WARNING: no package could be audited" in audit.summary(result)


@pytest.mark.parametrize(("report", "code"), [(VULNERABLE, 1), (SKIPPED, 0), (NONE, 0)])
def test_exit_code_from_a_saved_report(tmp_path: Path, report: dict[str, Any], code: int) -> None:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(report))
    assert audit.main(["--report", str(path)]) == code


class _Service(BaseHTTPRequestHandler):
    """A stand-in PyPI JSON API and OSV API on a local port (the network edge)."""

    per_version = 200  # what /pypi/<name>/<version>/json answers

    def _send(self, status: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts == ["pypi", "pip", "json"]:
            self._send(200, {"info": {"version": "24.0"}, "releases": {"24.0": []}})
        elif parts == ["pypi", "pip", "24.0", "json"]:
            self._send(self.per_version, {"info": {"version": "24.0"}, "vulnerabilities": []})
        else:
            self._send(404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(200, {"vulns": []} if self.path == "/v1/query" else None)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[str, type[_Service]]]:
    handler = type("Handler", (_Service,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_probe_finds_a_partial_pypi_mirror(
    service: tuple[str, type[_Service]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding on the development machine: project pages answer, per-version pages
    (what pip-audit's ``pypi`` service reads) answer 404 — every package then looks
    "not found on PyPI".  The probe names it instead of auditing nothing."""
    url, handler = service
    monkeypatch.setattr(audit, "PYPI_URL", f"{url}/pypi")
    assert audit.probe_pypi() is None
    handler.per_version = 404
    why = audit.probe_pypi()
    assert why is not None and "per-version JSON API" in why and "HTTP 404" in why
    monkeypatch.setattr(audit, "PYPI_URL", "http://127.0.0.1:9/pypi")
    assert "unreachable" in (audit.probe_pypi(timeout_s=2) or "")


def test_probe_osv(service: tuple[str, type[_Service]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = service
    monkeypatch.setattr(audit, "OSV_URL", f"{url}/v1/query")
    assert audit.probe_osv() is None
    monkeypatch.setattr(audit, "OSV_URL", "http://127.0.0.1:9/v1/query")
    assert "unreachable" in (audit.probe_osv(timeout_s=2) or "")


def _fake_python(tmp_path: Path, audit_body: str) -> str:
    """A stand-in for the venv's ``python -m pip list`` / ``python -m pip_audit …`` (the
    edges we cannot run offline); it records pip-audit's arguments in ``args.txt``."""
    installed = json.dumps(
        [
            {"name": "requests", "version": "2.19.0"},
            {"name": "pillow", "version": "9.0.0"},
            {"name": "carecircle-common", "version": "0.1.0"},
        ]
    )
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ \"$2\" = pip ]; then echo '{installed}'; exit 0; fi\n"
        f'echo "$@" > "{tmp_path}/args.txt"\n'
        f'grep -q . "$4" && cp "$4" "{tmp_path}/requirements.txt"\n' + audit_body
    )
    script.chmod(0o755)
    return str(script)


def _copies(sample: Path) -> str:
    """pip-audit body: write ``sample`` to the path after --output, exit 1 like pip-audit."""
    return f'while [ "$1" != "--output" ]; do shift; done\ncp "{sample}" "$2"\nexit 1\n'


def _services(monkeypatch: pytest.MonkeyPatch, pypi: str | None, osv: str | None) -> None:
    monkeypatch.setattr(audit, "probe_pypi", lambda timeout_s=10.0: pypi)
    monkeypatch.setattr(audit, "probe_osv", lambda timeout_s=10.0: osv)


def test_no_service_warns_loudly_passes_ci_and_fails_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _services(monkeypatch, "PyPI answers project pages but not …", "OSV is unreachable")
    python = _fake_python(tmp_path, "exit 99\n")
    assert audit.main(["--python", python]) == 0
    err = capsys.readouterr().err
    assert "WARNING: dependency audit NOT performed" in err
    assert "project pages" in err and "OSV is unreachable" in err
    assert audit.main(["--python", python, "--strict"]) == audit.NOT_AUDITED
    assert not (tmp_path / "args.txt").exists(), "pip-audit must not run without a service"


def test_osv_is_used_when_pypi_is_a_partial_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _services(monkeypatch, "PyPI answers project pages but not …", None)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(VULNERABLE))
    python = _fake_python(tmp_path, _copies(sample))
    assert audit.main(["--python", python]) == 1
    out = capsys.readouterr().out
    assert "against osv" in out and "VULNERABLE requests==2.19.0" in out
    args = (tmp_path / "args.txt").read_text().split()
    assert args[args.index("--vulnerability-service") + 1] == "osv"
    assert {"--no-deps", "--disable-pip", "--requirement"} <= set(args)
    # the installed third-party packages, pinned; our editable packages left out
    assert (tmp_path / "requirements.txt").read_text() == "pillow==9.0.0\nrequests==2.19.0\n"


def test_a_service_that_knows_no_version_is_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _services(monkeypatch, None, "OSV is unreachable")
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"dependencies": SKIPPED["dependencies"][:1], "fixes": []}))
    python = _fake_python(tmp_path, _copies(sample))
    assert audit.main(["--python", python]) == 0
    err = capsys.readouterr().err
    assert "NOT performed" in err and "knew none of the 2 installed versions" in err


def test_pip_audit_losing_the_network_mid_run_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _services(monkeypatch, None, "OSV is unreachable")
    python = _fake_python(
        tmp_path,
        "echo \"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org')\" >&2\n"
        "exit 1\n",
    )
    assert audit.main(["--python", python]) == 0
    err = capsys.readouterr().err
    assert "lost pypi on the way" in err and "NOT performed" in err


def test_pip_audit_report_is_read_from_its_output_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _services(monkeypatch, None, None)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(VULNERABLE))
    python = _fake_python(tmp_path, _copies(sample))
    assert audit.main(["--python", python]) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE requests==2.19.0" in out and "against pypi" in out


def test_pip_audit_broken_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _services(monkeypatch, None, None)
    python = _fake_python(tmp_path, "echo 'No module named pip_audit' >&2\nexit 1\n")
    with pytest.raises(SystemExit, match="pip-audit failed"):
        audit.main(["--python", python])
