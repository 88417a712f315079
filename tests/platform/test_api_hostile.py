"""Hostile input through every API parameter (issue 12, reliability).

Every route of the OpenAPI document × every path and query parameter × a list of SQL
injection, path-traversal and junk strings, as an admin and as a family member.  No
response is a 5xx, no response contains an id from the other prefecture (world 2) or
from outside a family member's consented resident, no password hash or file content
leaks, and the database is intact afterwards.  Mutating routes get hostile strings in
*every* path parameter, so no real object is ever addressed.

JWT tampering (malformed, ``alg: none``, altered payload, expired, replayed refresh
tokens) is at the end; test_api_auth.py covers signing with another secret, expiry by
the clock and replayed refresh tokens revoking their family
(``test_refresh_rotates_and_a_replayed_token_revokes_the_family``).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from carecircle.platform.auth.tokens import DEMO_SECRET, TokenCodec

from .conftest import NOW

HOSTILE = [
    "' OR '1'='1",
    "1' OR 1=1--",
    "x'; DROP TABLE residents; --",
    "x' UNION SELECT password_hash, NULL FROM users--",
    '" OR ""="',
    "1; SELECT pg_sleep(5)",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "....//....//etc/passwd",
    "%00",
    "\x00",
    "*",
    "%",
    "_",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "null",
    "[]",
    "{}",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "\u202e\U0001d54f",
    " ",
    "A" * 5000,
]

#: which world object fills a path parameter when another parameter is the target
OWN_PATH = {
    "place_id": "v1",
    "site_id": "h1",
    "device_id": "d1",
    "gateway_id": "g1",
    "resident_id": "r1",
}
SKIP = {"/api/v1/live"}  # a server-sent-event stream; its parameters are none


def operations(app: Any) -> list[tuple[str, str, list[tuple[str, str]]]]:
    app.openapi_schema = None
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path in SKIP:
            continue
        for method, op in ops.items():
            params = [(p["name"], p["in"]) for p in op.get("parameters", [])]
            out.append((method.upper(), path, params))
    return out


def forbidden_ids(world: Any, role: str) -> list[str]:
    other = [world[k] for k in ("p2", "c2", "t2", "v2", "h2", "r2", "g2", "d2")]
    if role == "family":  # consented to r1 only: not the nursing home's resident
        other += [world["rn"], world["n1"]]
    return other


def own_value(world: Any, name: str) -> str:
    if name == "alert_id":
        return str(world.alerts["a1"])
    if name in OWN_PATH:
        return world[OWN_PATH[name]]
    return "1"


def check(resp: Any, forbidden: list[str], what: str) -> None:
    assert resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    text = resp.text
    for bad in forbidden:
        assert bad not in text, f"{what}: leaked {bad}"
    for leak in ("$argon2", "root:x:0:0", "password_hash", "Traceback"):
        assert leak not in text, f"{what}: leaked {leak!r}"


@pytest.mark.parametrize("role", ["admin", "family"])
def test_hostile_strings_in_every_parameter(
    api: TestClient, world: Any, tokens: dict[str, dict[str, str]], role: str
) -> None:
    headers = tokens[role]
    forbidden = forbidden_ids(world, role)
    before = world.conn.execute(
        "SELECT (SELECT count(*) FROM residents), (SELECT count(*) FROM users),"
        " (SELECT count(*) FROM alerts)"
    ).fetchone()
    cases = 0
    for method, path, params in operations(api.app):
        mutating = method != "GET"
        targets = params or [("", "")]
        for target, where in targets:
            for bad in HOSTILE:
                url, query = path, {}
                for name, loc in params:
                    value = bad if (name == target or (mutating and loc == "path")) else None
                    if loc == "path":
                        url = url.replace(
                            "{" + name + "}", quote(value or own_value(world, name), safe="")
                        )
                    elif value is not None:
                        query[name] = value
                if not params and bad != HOSTILE[0]:
                    continue  # routes without parameters: one call with a hostile body
                body: Any = {"username": bad, "password": bad, "refresh_token": bad}
                resp = api.request(
                    method,
                    url,
                    params=query,
                    headers=headers,
                    json=body if mutating else None,
                )
                check(resp, forbidden, f"{role} {method} {url} {where}:{target}")
                cases += 1
    after = world.conn.execute(
        "SELECT (SELECT count(*) FROM residents), (SELECT count(*) FROM users),"
        " (SELECT count(*) FROM alerts)"
    ).fetchone()
    assert before[:2] == after[:2]  # nothing dropped or created by injection
    assert after[2] == before[2]
    print(f"\nHOSTILE role={role} cases={cases} crashes=0 unauthorised_reads=0")
    assert cases > 500


def b64(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_malformed_tampered_and_unsigned_tokens_are_401(
    api: TestClient, world: Any, tokens: dict[str, dict[str, str]]
) -> None:
    good = tokens["family"]["Authorization"].removeprefix("Bearer ")
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    admin_claims = {**claims, "role": "admin", "sub": claims["sub"]}
    expired = TokenCodec(DEMO_SECRET, timedelta(minutes=15)).issue(
        claims["sub"], "family", NOW - timedelta(hours=2)
    )
    flip = "A" if sig[-2] != "A" else "B"
    bad_tokens = {
        "empty": "",
        "garbage": "not-a-jwt",
        "two parts": f"{head}.{payload}",
        "four parts": f"{good}.x",
        "bad base64": "!!!.@@@.###",
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(admin_claims)}.",
        "alg none no dot": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(admin_claims)}",
        "payload swapped": f"{head}.{b64(admin_claims)}.{sig}",
        "signature flipped": f"{head}.{payload}.{sig[:-2]}{flip}{sig[-1]}",
        "signature removed": f"{head}.{payload}.",
        "alg HS512 header": f"{b64({'alg': 'HS512', 'typ': 'JWT'})}.{payload}.{sig}",
        "expired": expired,
        "huge": "a" * 20000,
    }
    cases = 0
    for name, token in bad_tokens.items():
        for scheme in ("Bearer", "bearer", "Basic"):
            resp = api.get("/api/v1/me", headers={"Authorization": f"{scheme} {token}"})
            assert resp.status_code == 401, (name, scheme, resp.status_code, resp.text[:200])
            assert resp.json()["error"]["message"], name  # a reason
            cases += 1
        resp = api.get(f"/api/v1/residents/{world['r1']}", headers={"Authorization": token})
        assert resp.status_code == 401, name
        cases += 1
    assert api.get("/api/v1/me", headers=tokens["family"]).status_code == 200  # control
    print(f"\nHOSTILE jwt cases={cases} accepted=0")
