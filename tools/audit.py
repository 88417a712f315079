"""Dependency audit (``make audit``): known vulnerabilities in the venv's third-party packages.

Lists the installed third-party packages (``pip list --exclude-editable``: our own
editable ``carecircle-*`` packages are left out), pins them in a requirements file and
runs ``pip-audit -r FILE --no-deps --disable-pip`` against the first vulnerability
service that really answers, then classifies its JSON report:

* a package with a known vulnerability fails the run (exit 1), listing id and fix;
* a package the service does not know (a local build) is *skipped*, counted and named;
* no service answers: a loud ``WARNING: dependency audit NOT performed`` naming why,
  exit 0 (CI must not go red because the network is closed; ``--strict`` exits 3).

Which service answers is *probed*, not assumed.  pip-audit's default service (``pypi``)
reads the per-version JSON API, ``https://pypi.org/pypi/<name>/<version>/json``; a
network that serves only part of PyPI (project pages, ``/simple``) answers 404 there for
every package, and pip-audit then reports each one as "not found on PyPI" — skipped, not
audited.  So the probe asks for the per-version page of pip's *latest* release (taken
from pip's project page): 200 means the service works.  Then OSV (``-s osv``:
``https://api.osv.dev/v1/query``), probed with one query.  And if a service was chosen
but skipped every package anyway, that is reported as not audited, never as a pass.

``python tools/audit.py --report FILE`` classifies a saved pip-audit JSON report instead.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYPI_URL = "https://pypi.org/pypi"
OSV_URL = "https://api.osv.dev/v1/query"
OURS = "carecircle"
#: Exit code of ``--strict`` when no vulnerability service answered.
NOT_AUDITED = 3


@dataclass
class Audit:
    audited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: (package==version, vulnerability id, fix versions)
    vulnerable: list[tuple[str, str, list[str]]] = field(default_factory=list)
    service: str = "pypi"

    @property
    def failed(self) -> bool:
        return bool(self.vulnerable)

    @property
    def performed(self) -> bool:
        """At least one package was really checked against the service."""
        return bool(self.audited)


def _version_in(reason: str) -> str | None:
    """The version pip-audit names at the end of a skip reason: ``… foo (1.2.3)``."""
    match = re.search(r"\(([^()\s]+)\)\s*$", reason)
    return match.group(1) if match else None


def classify(report: dict[str, Any], service: str = "pypi") -> Audit:
    """Sort pip-audit's JSON report (``-f json``) into audited, skipped and vulnerable."""
    audit = Audit(service=service)
    for dep in report.get("dependencies", []):
        name = str(dep.get("name", "?"))
        if name.lower().replace("_", "-").startswith(OURS):
            continue
        version = dep.get("version") or _version_in(str(dep.get("skip_reason", "")))
        label = f"{name}=={version}" if version else name
        if "skip_reason" in dep:
            audit.skipped.append(label)
            continue
        audit.audited.append(label)
        for vuln in dep.get("vulns", []) or []:
            audit.vulnerable.append(
                (label, str(vuln.get("id", "?")), [str(v) for v in vuln.get("fix_versions", [])])
            )
    return audit


def summary(audit: Audit) -> str:
    lines = [
        f"audited {len(audit.audited)} packages against {audit.service}, "
        f"skipped {len(audit.skipped)} (versions unknown to {audit.service}), "
        f"{len(audit.vulnerable)} known vulnerabilities"
    ]
    if audit.skipped:
        lines.append("skipped: " + ", ".join(sorted(audit.skipped)))
    if not audit.audited:
        lines.append(
            f"WARNING: no package could be audited (all versions unknown to {audit.service})"
        )
    for package, vuln_id, fixes in audit.vulnerable:
        fix = f"fixed in {', '.join(fixes)}" if fixes else "no fix released"
        lines.append(f"VULNERABLE {package}: {vuln_id} ({fix})")
    return "\n".join(lines)


# -- which vulnerability service answers ---------------------------------------------


def _answer(status: int) -> str:
    return f"HTTP {status}" if status else "no answer"


def _get_json(url: str, timeout_s: float, body: bytes | None = None) -> tuple[int, Any]:
    """(HTTP status, parsed JSON or None); status 0 when the network did not answer."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP URL: {url}")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
            try:
                return status, json.loads(response.read())
            except ValueError:
                return status, None
    except urllib.error.HTTPError as err:
        return int(err.code), None
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, None


def probe_pypi(timeout_s: float = 10.0) -> str | None:
    """``None`` when PyPI's per-version JSON API (pip-audit's ``pypi`` service) works,
    else why not."""
    status, project = _get_json(f"{PYPI_URL}/pip/json", timeout_s)
    if status != 200 or not isinstance(project, dict):
        return f"PyPI ({PYPI_URL}) is unreachable ({_answer(status)})"
    latest = str(project.get("info", {}).get("version", ""))
    if not latest:
        return "PyPI's project page for pip names no version"
    status, _ = _get_json(f"{PYPI_URL}/pip/{latest}/json", timeout_s)
    if status != 200:
        return (
            f"PyPI answers project pages but not the per-version JSON API that pip-audit "
            f"reads ({PYPI_URL}/pip/{latest}/json: {_answer(status)} for a "
            "release its own project page lists) — a partial mirror or proxy"
        )
    return None


def probe_osv(timeout_s: float = 10.0) -> str | None:
    """``None`` when the OSV API answers a query, else why not."""
    query = json.dumps({"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "1.0"})
    status, data = _get_json(OSV_URL, timeout_s, body=query.encode())
    if status != 200 or not isinstance(data, dict):
        return f"OSV ({OSV_URL}) is unreachable ({_answer(status)})"
    return None


# -- running pip-audit ------------------------------------------------------------------


def installed(python: str) -> list[tuple[str, str]]:
    """(name, version) of the installed third-party distributions (editables left out)."""
    proc = subprocess.run(
        [python, "-m", "pip", "list", "--format=json", "--exclude-editable"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"pip list failed (exit {proc.returncode}): {tail[0]}")
    return sorted(
        (str(d["name"]), str(d["version"]))
        for d in json.loads(proc.stdout)
        if not str(d["name"]).lower().replace("_", "-").startswith(OURS)
    )


def run_pip_audit(
    python: str, requirements: Path, service: str, timeout_s: float
) -> dict[str, Any] | None:
    """pip-audit's JSON report, or ``None`` when it lost the service on the way."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        proc = subprocess.run(
            [
                python,
                "-m",
                "pip_audit",
                "--requirement",
                str(requirements),
                "--no-deps",
                "--disable-pip",
                "--vulnerability-service",
                service,
                "--format",
                "json",
                "--progress-spinner",
                "off",
                "--timeout",
                "15",
                "--output",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if out.exists():
            data: dict[str, Any] = json.loads(out.read_text())
            return data
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        if any(
            w in proc.stderr for w in ("ConnectionError", "Max retries", "ProxyError", "timed out")
        ):
            sys.stderr.write(f"warning: pip-audit lost {service} on the way: {tail[0]}\n")
            return None
        raise SystemExit(f"pip-audit failed (exit {proc.returncode}): {tail[0]}")


def not_performed(reasons: list[str], strict: bool) -> int:
    sys.stderr.write("WARNING: dependency audit NOT performed: no vulnerability service answered\n")
    for reason in reasons:
        sys.stderr.write(f"  - {reason}\n")
    sys.stderr.write(
        "  Run `make audit` where pypi.org or api.osv.dev is reachable; "
        "nothing here says the dependencies are safe.\n"
    )
    return NOT_AUDITED if strict else 0


def audit_environment(python: str, timeout_s: float, strict: bool) -> int:
    packages = installed(python)
    reasons: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in packages))
        for service, probe in (("pypi", probe_pypi), ("osv", probe_osv)):
            why = probe()
            if why is not None:
                reasons.append(why)
                continue
            report = run_pip_audit(python, requirements, service, timeout_s)
            if report is None:
                reasons.append(f"{service} stopped answering during the audit")
                continue
            audit = classify(report, service)
            if not audit.performed:
                reasons.append(
                    f"{service} answered the probe but knew none of the "
                    f"{len(packages)} installed versions"
                )
                continue
            sys.stdout.write(f"{len(packages)} installed third-party packages\n")
            sys.stdout.write(summary(audit) + "\n")
            return 1 if audit.failed else 0
    return not_performed(reasons, strict)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="classify a saved pip-audit JSON report")
    parser.add_argument("--service", default="pypi", help="service named in --report's summary")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the venv")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {NOT_AUDITED} when no vulnerability service answered (release builds)",
    )
    args = parser.parse_args(argv)
    if args.report is None:
        return audit_environment(args.python, args.timeout, args.strict)
    audit = classify(json.loads(args.report.read_text()), args.service)
    sys.stdout.write(summary(audit) + "\n")
    return 1 if audit.failed else 0


if __name__ == "__main__":
    sys.exit(main())
