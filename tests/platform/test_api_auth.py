"""Sign-in, tokens, refresh rotation with replay detection, API keys, rate limit, secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carecircle.common.clock import ManualClock
from carecircle.common.errors import ConfigError
from carecircle.platform.api.app import create_app
from carecircle.platform.auth.passwords import hash_password, verify_password
from carecircle.platform.auth.ratelimit import LoginRateLimiter
from carecircle.platform.auth.tokens import DEMO_SECRET, TokenCodec, signing_secret
from carecircle.platform.settings import PlatformSettings

PASSWORD = "correct horse battery"


def login(api: TestClient, username: str, password: str = PASSWORD) -> Any:
    return api.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_login_gives_tokens_that_work_and_wrong_password_does_not(
    api: TestClient, world: Any
) -> None:
    r = login(api, world.username("staff"))
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["role"] == "staff" and me.json()["place_id"] == world["t1"]
    bad = login(api, world.username("staff"), "wrong password!")
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "unauthenticated"
    assert bad.headers["WWW-Authenticate"] == "Bearer"
    nobody = login(api, "no-such-user", "wrong password!")
    assert nobody.status_code == 401 and nobody.json()["error"] == bad.json()["error"]


def test_access_token_expires_with_the_clock(
    api: TestClient, world: Any, clock: ManualClock
) -> None:
    token = login(api, world.username("admin")).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/me", headers=h).status_code == 200
    clock.advance(timedelta(minutes=16))
    try:
        assert api.get("/api/v1/me", headers=h).status_code == 401
    finally:
        clock.advance(-timedelta(minutes=16))


def test_refresh_rotates_and_a_replayed_token_revokes_the_family(
    api: TestClient, world: Any
) -> None:
    first = login(api, world.username("staff")).json()["refresh_token"]
    second = api.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert second.status_code == 200
    second_token = second.json()["refresh_token"]
    assert second_token != first
    # the old token again: someone copied it; the whole sign-in is revoked
    replay = api.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401 and "reused" in replay.json()["error"]["message"]
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": second_token}).status_code == 401
    # a new sign-in is unaffected; logout revokes it
    third = login(api, world.username("staff")).json()["refresh_token"]
    assert api.post("/api/v1/auth/logout", json={"refresh_token": third}).status_code == 204
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": third}).status_code == 401
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 40}).status_code == 401


def test_refresh_tokens_are_stored_hashed(api: TestClient, world: Any) -> None:
    token = login(api, world.username("admin")).json()["refresh_token"]
    rows = world.conn.execute("SELECT token_hash FROM refresh_tokens").fetchall()
    assert all(token not in r[0] for r in rows)
    hashes = world.conn.execute("SELECT password_hash FROM users").fetchall()
    assert all(h[0].startswith("$argon2id$") for h in hashes)


def test_api_key_acts_within_its_scopes_and_can_be_revoked(
    api: TestClient, world: Any, tokens: dict[str, dict[str, str]]
) -> None:
    created = api.post(
        "/api/v1/auth/api-keys",
        json={"name": "hospital bridge", "scopes": ["fhir"]},
        headers=tokens["staff"],
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("cck_") and created.json()["prefix"] == key[:12]
    k = {"X-API-Key": key}
    fhir = api.get("/api/v1/fhir/Observation", params={"patient": world["r1"]}, headers=k)
    assert fhir.status_code == 200 and fhir.json()["total"] > 0
    # the key lacks alert scopes: refused even though the user could
    assert api.get("/api/v1/alerts", headers=k).status_code == 403
    # the key is confined to its user's scope too
    other = api.get("/api/v1/fhir/Observation", params={"patient": world["r2"]}, headers=k)
    assert other.status_code == 404
    assert (
        api.post(
            "/api/v1/auth/api-keys", json={"name": "x", "scopes": ["read"]}, headers=k
        ).status_code
        == 400
    )
    listed = api.get("/api/v1/auth/api-keys", headers=tokens["staff"]).json()
    assert all("key" not in item for item in listed)
    stored = world.conn.execute("SELECT key_hash FROM api_keys").fetchall()
    assert all(key not in r[0] for r in stored)
    kid = created.json()["id"]
    assert api.delete(f"/api/v1/auth/api-keys/{kid}", headers=tokens["staff"]).status_code == 204
    assert (
        api.get("/api/v1/fhir/Observation", params={"patient": world["r1"]}, headers=k).status_code
        == 401
    )


def test_api_key_scopes_cannot_exceed_the_role(
    api: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    r = api.post(
        "/api/v1/auth/api-keys",
        json={"name": "x", "scopes": ["gateway.write"]},
        headers=tokens["staff"],
    )
    assert r.status_code == 400 and "gateway.write" in r.json()["error"]["message"]
    r = api.post(
        "/api/v1/auth/api-keys",
        json={"name": "x", "scopes": ["everything"]},
        headers=tokens["staff"],
    )
    assert r.status_code == 400


def test_login_is_rate_limited_per_username_and_address(database_url: str, world: Any) -> None:
    clock = ManualClock(datetime(2026, 11, 29, 8, 0, tzinfo=UTC))
    settings = PlatformSettings(
        database_url=database_url, jwt_secret="", demo_mode=True, login_burst=3, login_refill_s=60
    )  # type: ignore[arg-type]
    with TestClient(create_app(settings, clock, dashboard=False)) as api:
        user = world.username("family")
        for _ in range(3):
            assert login(api, user, "wrong password!").status_code == 401
        limited = login(api, user, PASSWORD)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0
        # another user from the same address is not affected
        assert login(api, world.username("responder")).status_code == 200
        clock.advance(timedelta(seconds=61))
        assert login(api, user, PASSWORD).status_code == 200


def test_rate_limiter_refills() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    rl = LoginRateLimiter(clock, burst=2, refill_s=10)
    assert rl.allow("a", "ip")[0] and rl.allow("A", "ip")[0]
    ok, wait = rl.allow("a", "ip")
    assert not ok and wait == pytest.approx(10)
    assert rl.allow("a", "other-ip")[0]
    clock.advance(timedelta(seconds=5))
    assert not rl.allow("a", "ip")[0]
    clock.advance(timedelta(seconds=10))
    assert rl.allow("a", "ip")[0]


def test_weak_secret_refused_outside_demo_mode() -> None:
    with pytest.raises(ConfigError):
        signing_secret("", demo_mode=False)
    with pytest.raises(ConfigError):
        signing_secret("short", demo_mode=False)
    with pytest.raises(ConfigError):
        signing_secret(DEMO_SECRET, demo_mode=False)
    assert signing_secret("", demo_mode=True) == DEMO_SECRET
    strong = "s" * 40
    assert signing_secret(strong, demo_mode=False) == strong
    with pytest.raises(ConfigError):
        create_app(PlatformSettings(demo_mode=False, jwt_secret=""))  # type: ignore[arg-type]


def test_tokens_signed_with_another_secret_are_refused() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    mine = TokenCodec("a" * 40, timedelta(minutes=5))
    theirs = TokenCodec("b" * 40, timedelta(minutes=5))
    assert mine.subject(mine.issue("u1", "staff", now), now) == "u1"
    assert mine.subject(theirs.issue("u1", "staff", now), now) is None
    assert mine.subject("not.a.token", now) is None


def test_passwords() -> None:
    h = hash_password("a long enough password")
    assert verify_password(h, "a long enough password")
    assert not verify_password(h, "another password")
    assert not verify_password(None, "a long enough password")
    with pytest.raises(ValueError):
        hash_password("short")
