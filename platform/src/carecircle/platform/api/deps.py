"""What routes get injected: the app's state, a database connection, the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from carecircle.common.clock import Clock
from carecircle.common.errors import PermissionDenied, StoreUnavailable
from carecircle.platform.api.errors import Unauthenticated
from carecircle.platform.auth import users
from carecircle.platform.auth.policy import Principal
from carecircle.platform.auth.ratelimit import LoginRateLimiter
from carecircle.platform.auth.service import Authenticator
from carecircle.platform.auth.tokens import TokenCodec
from carecircle.platform.privacy.crypto import PiiCipher
from carecircle.platform.settings import PlatformSettings

if TYPE_CHECKING:
    from carecircle.platform.api.live import LiveHub
    from carecircle.platform.dispatch.service import DispatchService

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]
SESSION_COOKIE = "cc_session"
CSRF_COOKIE = "cc_csrf"
CSRF_HEADER = "X-CSRF-Token"
API_KEY_HEADER = "X-API-Key"


@dataclass
class AppState:
    settings: PlatformSettings
    clock: Clock
    codec: TokenCodec
    limiter: LoginRateLimiter
    pool: ConnectionPool[Any]
    hub: LiveHub
    auth: Authenticator
    #: Dispatch (responders' tasks, coverage); built at start-up from the settings.
    dispatch: DispatchService
    #: Opens sealed addresses (keys configured); ``seal`` also seals new ones
    #: (``pii_encryption`` on).  docs/privacy.md, phase 2.
    pii: PiiCipher | None = None
    seal: PiiCipher | None = None


def state(request: Request) -> AppState:
    st = request.app.state.cc
    assert isinstance(st, AppState)
    return st


StateDep = Annotated[AppState, Depends(state)]


def get_conn(st: StateDep) -> Iterator[Conn]:
    """One pooled autocommit connection for the request."""
    try:
        with st.pool.connection(timeout=10) as conn:
            yield conn
    except psycopg.OperationalError as err:
        raise StoreUnavailable("the database is not reachable") from err


ConnDep = Annotated[Conn, Depends(get_conn)]

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _principal(request: Request, st: AppState, conn: Conn, bearer: str | None) -> Principal:
    now = st.clock.now()
    api_key = request.headers.get(API_KEY_HEADER)
    if api_key:
        p = users.principal_for_key(conn, api_key, now)
        if p is None:
            raise Unauthenticated("invalid, expired or revoked API key")
        return p
    token = bearer or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthenticated("sign in first: Authorization: Bearer <token> or X-API-Key")
    user_id = st.codec.subject(token, now)
    user = users.by_id(conn, user_id) if user_id else None
    if user is None or user.disabled:
        raise Unauthenticated("invalid or expired access token")
    if bearer is None and request.method not in ("GET", "HEAD", "OPTIONS"):
        # Cookie sessions (the dashboard) must prove the request came from our page.
        sent = request.headers.get(CSRF_HEADER)
        if not sent or sent != request.cookies.get(CSRF_COOKIE):
            raise PermissionDenied("missing or wrong CSRF token")
    return user.principal()


def current_principal(
    request: Request,
    st: StateDep,
    conn: ConnDep,
    bearer: Annotated[str | None, Depends(_bearer)],
) -> Principal:
    """The caller, checked on the request's own connection."""
    return _principal(request, st, conn, bearer)


def stream_principal(
    request: Request, st: StateDep, bearer: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    """The caller of a long-lived stream: a short connection, not held while streaming."""
    with st.pool.connection(timeout=10) as conn:
        return _principal(request, st, conn, bearer)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
StreamPrincipalDep = Annotated[Principal, Depends(stream_principal)]
