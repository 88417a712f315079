"""Dependency audit (``make audit``): known vulnerabilities in the venv's third-party packages.

Runs ``pip-audit`` on the installed environment against PyPI's vulnerability data,
skipping our own editable ``carecircle-*`` packages, and classifies its JSON report:

* a package with a known vulnerability fails the run (exit 1), listing id and fix;
* a package PyPI does not know (a local build or mirror-only version) is *skipped*,
  counted and named, but never a failure;
* PyPI unreachable: a clear warning, exit 0 (CI must not go red because a network is down).

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

PROBE_URL = "https://pypi.org/pypi/pip/json"
OURS = "carecircle"


@dataclass
class Audit:
    audited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: (package==version, vulnerability id, fix versions)
    vulnerable: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.vulnerable)


def _version_in(reason: str) -> str | None:
    """The version pip-audit names at the end of a skip reason: ``… foo (1.2.3)``."""
    match = re.search(r"\(([^()\s]+)\)\s*$", reason)
    return match.group(1) if match else None


def classify(report: dict[str, Any]) -> Audit:
    """Sort pip-audit's JSON report (``-f json``) into audited, skipped and vulnerable."""
    audit = Audit()
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
        f"audited {len(audit.audited)} packages, skipped {len(audit.skipped)} "
        "(versions unknown to PyPI), "
        f"{len(audit.vulnerable)} known vulnerabilities"
    ]
    if audit.skipped:
        lines.append("skipped: " + ", ".join(sorted(audit.skipped)))
    if not audit.audited:
        lines.append("warning: no package could be audited (all versions unknown to PyPI)")
    for package, vuln_id, fixes in audit.vulnerable:
        fix = f"fixed in {', '.join(fixes)}" if fixes else "no fix released"
        lines.append(f"VULNERABLE {package}: {vuln_id} ({fix})")
    return "\n".join(lines)


def pypi_reachable(timeout_s: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(PROBE_URL, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_pip_audit(python: str, timeout_s: float) -> dict[str, Any] | None:
    """pip-audit's JSON report, or ``None`` when it could not reach PyPI."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        proc = subprocess.run(
            [
                python,
                "-m",
                "pip_audit",
                "--local",
                "--skip-editable",
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
            sys.stderr.write(f"warning: pip-audit could not reach PyPI: {tail[0]}\n")
            return None
        raise SystemExit(f"pip-audit failed (exit {proc.returncode}): {tail[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="classify a saved pip-audit JSON report")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the venv")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.report is not None:
        report: dict[str, Any] | None = json.loads(args.report.read_text())
    else:
        if not pypi_reachable():
            sys.stderr.write(
                f"warning: PyPI ({PROBE_URL}) is unreachable: dependency audit NOT run\n"
            )
            return 0
        report = run_pip_audit(args.python, args.timeout)
        if report is None:
            return 0
    assert report is not None
    audit = classify(report)
    sys.stdout.write(summary(audit) + "\n")
    return 1 if audit.failed else 0


if __name__ == "__main__":
    sys.exit(main())
