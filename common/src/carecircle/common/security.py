"""Start-up checks: known default credentials are refused outside demo mode.

Every long-running process that talks to PostgreSQL or the broker calls
:func:`refuse_default_credentials` right after building its settings.  In demo mode
(``make demo``, tests) the throwaway servers run without passwords and the check
only logs what it would refuse; anywhere else a missing or well-known password is a
:class:`~carecircle.common.errors.ConfigError` and the process does not start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote

from pydantic import AnyUrl

from carecircle.common.errors import ConfigError

log = logging.getLogger(__name__)

#: Passwords that ship in images, tutorials and our own examples: never in production.
DEFAULT_PASSWORDS = frozenset(
    {
        "",
        "postgres",
        "password",
        "changeme",
        "change-me",
        "carecircle",
        "secret",
        "admin",
        "mosquitto",
    }
)

#: Settings fields holding a URL with credentials, checked when the settings have them.
URL_FIELDS = ("database_url", "mqtt_url")


def _weak_reason(field: str, url: AnyUrl) -> str | None:
    """Why this URL's credentials are a known default, or ``None`` when they are not."""
    password = unquote(url.password) if url.password else ""
    if password.lower() in DEFAULT_PASSWORDS:
        if password:
            return f"{field} uses the well-known default password of user {url.username!r}"
        if url.scheme.startswith("postgres"):
            query = parse_qs(url.query or "")
            # Client certificates or a local socket (peer authentication) need no password.
            if "sslcert" in query or (url.host or "").startswith("/") or "host" in query:
                return None
        return f"{field} has no password (anonymous or trust access)"
    return None


def default_credential_problems(settings: object, fields: Iterable[str] = URL_FIELDS) -> list[str]:
    """One line per URL setting of ``settings`` that carries a default or empty password."""
    problems = []
    for field in fields:
        value = getattr(settings, field, None)
        if value is None:
            continue
        reason = _weak_reason(field, AnyUrl(str(value)))
        if reason is not None:
            problems.append(reason)
    return problems


def refuse_default_credentials(settings: object, demo_mode: bool) -> None:
    """Raise :class:`ConfigError` when a URL setting uses a default password, unless in demo mode.

    The message names the setting, never the password.
    """
    problems = default_credential_problems(settings)
    if not problems:
        return
    if demo_mode:
        for problem in problems:
            log.warning("demo mode: accepting %s", problem)
        return
    raise ConfigError(
        "refusing to start with default credentials: "
        + "; ".join(problems)
        + ". Set real passwords in CARECIRCLE_DATABASE_URL / CARECIRCLE_MQTT_URL "
        "(deploy/README.md), or set CARECIRCLE_DEMO_MODE=true on a throwaway demo machine"
    )
