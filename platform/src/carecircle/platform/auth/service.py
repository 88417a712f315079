"""Sign-in, token refresh and sign-out, shared by the API and the dashboard."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from carecircle.common.clock import Clock
from carecircle.platform.auth import users
from carecircle.platform.auth.passwords import verify_password
from carecircle.platform.auth.ratelimit import LoginRateLimiter
from carecircle.platform.auth.tokens import TokenCodec

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]


class LoginRefused(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Session:
    user: users.User
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class Authenticator:
    codec: TokenCodec
    limiter: LoginRateLimiter
    clock: Clock
    refresh_lifetime: timedelta

    def login(self, conn: Conn, username: str, password: str, client: str) -> Session:
        allowed, wait = self.limiter.allow(username, client)
        if not allowed:
            log.warning("login rate limit hit from %s", client)
            raise LoginRefused("too many sign-in attempts; wait and try again", wait)
        user = users.by_username(conn, username)
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            raise LoginRefused("wrong username or password")
        self.limiter.reset(username, client)
        now = self.clock.now()
        refresh = users.issue_refresh(conn, user.id, now, self.refresh_lifetime)
        return self._session(user, refresh)

    def refresh(self, conn: Conn, token: str) -> Session:
        outcome = users.rotate_refresh(conn, token, self.clock.now(), self.refresh_lifetime)
        if outcome.user_id is None or outcome.token is None:
            if "reused" in outcome.reason:
                log.warning("refresh token reuse detected; the token family is revoked")
            raise LoginRefused(outcome.reason)
        user = users.by_id(conn, outcome.user_id)
        if user is None or user.disabled:
            raise LoginRefused("user is disabled")
        return self._session(user, outcome.token)

    def logout(self, conn: Conn, token: str) -> None:
        users.revoke_refresh(conn, token, self.clock.now())

    def _session(self, user: users.User, refresh: str) -> Session:
        access = self.codec.issue(user.id, user.role.value, self.clock.now())
        return Session(user, access, refresh, int(self.codec.lifetime.total_seconds()))
