"""No secrets in the repository: every tracked (or about-to-be-added) file is scanned.

Fails with ``file:line: what`` for private keys, AWS-style access keys, committed
``.env`` files, and passwords inside URLs, except documentation examples (hosts under
``example.*``, ``localhost``, or placeholder passwords such as ``<password>``, ``…``) and
the throwaway credentials tests use against their own servers.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Built from parts so this file does not match its own patterns.
_KEY_HEADER = re.compile("-----BEGIN (?:[A-Z0-9]+ )*" + "PRIVATE KEY-----")
_AWS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_AWS_SECRET = re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}")
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://([^\s:/@'\"]+):([^\s@/'\"]+)@([^\s/:'\"?]+)")

#: Hosts that only appear in documentation.
_DOC_HOSTS = re.compile(r"(^|\.)example(\.(com|org|net))?$|^localhost$|^host$")
#: Passwords that are placeholders, not values.
_PLACEHOLDER = re.compile(r"^(<[^>]*>|…|\.\.\.|\*+|\$\{?[A-Z_]+\}?|pass|password|%s|\{[a-z_]*\})$")
#: Tests run their own throwaway servers; their fake credentials are not secrets.
_FAKE_URL_CREDENTIALS_UNDER = ("tests/",)
_BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".pdf", ".whl", ".gz", ".zip"}


def scan_text(path: str, text: str) -> list[str]:
    """Findings in one file, as ``path:line: reason``."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        if _KEY_HEADER.search(line):
            findings.append(f"{path}:{number}: private key")
        if _AWS_KEY.search(line):
            findings.append(f"{path}:{number}: AWS-style access key id")
        if _AWS_SECRET.search(line):
            findings.append(f"{path}:{number}: AWS secret access key")
        if path.startswith(_FAKE_URL_CREDENTIALS_UNDER):
            continue
        for match in _URL_PASSWORD.finditer(line):
            _user, password, host = match.groups()
            if _PLACEHOLDER.match(password) or _DOC_HOSTS.search(host):
                continue
            findings.append(f"{path}:{number}: password in URL ({match.group(0)[:12]}…)")
    return findings


def scan_name(path: str) -> list[str]:
    name = Path(path).name
    if name == ".env" or (name.endswith(".env") and not name.endswith(".example")):
        return [f"{path}:1: environment file with settings (commit a .example copy instead)"]
    if name.endswith((".pem", ".key", ".p12", ".pfx")) or name in ("id_rsa", "id_ed25519"):
        return [f"{path}:1: key or certificate file"]
    return []


def repository_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_secrets_in_tracked_files() -> None:
    files = repository_files()
    assert len(files) > 50, "git ls-files found almost nothing: wrong directory?"
    findings: list[str] = []
    for path in files:
        findings += scan_name(path)
        full = ROOT / path
        if full.suffix in _BINARY_SUFFIXES or not full.is_file():
            continue
        try:
            text = full.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings += scan_text(path, text)
    assert not findings, "secrets in the repository:\n" + "\n".join(findings)


@pytest.mark.parametrize(
    ("path", "text", "found"),
    [
        ("deploy/x.conf", "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE", "private key"),
        ("a.py", "-----BEGIN " + "PRIVATE KEY-----", "private key"),
        ("a.md", "key = AKIA" + "ABCDEFGHIJKLMNOP", "AWS-style"),
        ("a.toml", 'aws_secret_access_key = "' + "a" * 40 + '"', "AWS secret"),
        ("c.toml", 'database_url = "postgresql://cc:Hunter2-real@db.internal:5432/cc"', "URL"),
        ("tests/t.py", "-----BEGIN EC " + "PRIVATE KEY-----", "private key"),
    ],
)
def test_scanner_finds_planted_secrets(path: str, text: str, found: str) -> None:
    findings = scan_text(path, text)
    assert findings and found in findings[0]
    assert findings[0].startswith(f"{path}:1:")


@pytest.mark.parametrize(
    "line",
    [
        'mqtt_url = "mqtts://platform:secret@broker.example:8883"',
        'mqtt_url = "mqtts://gw-0001:<password>@broker.example.org:8883"',
        "CARECIRCLE_DATABASE_URL=postgresql://carecircle:…@db:5432/carecircle",
        "url = postgresql://cc:${POSTGRES_PASSWORD}@db/cc",
        "raise ConfigError('MQTT URL must look like mqtt://user:pass@host:1883')",
        "postgresql://postgres@127.0.0.1:5432/carecircle",
    ],
)
def test_documentation_examples_are_allowed(line: str) -> None:
    assert scan_text("docs/x.md", line) == []


def test_env_and_key_files_are_refused_by_name() -> None:
    assert scan_name("deploy/.env")
    assert scan_name("deploy/prod.env")
    assert scan_name("certs/server.key")
    assert not scan_name("deploy/compose.env.example")
