"""The FastAPI application: ``create_app(settings)`` builds it; nothing connects on import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from psycopg_pool import ConnectionPool

from carecircle.common.clock import Clock, SystemClock
from carecircle.platform.api import errors
from carecircle.platform.api.deps import AppState
from carecircle.platform.api.live import LiveHub
from carecircle.platform.api.routers import (
    alerts,
    auth,
    coverage,
    directory,
    fhir,
    live,
    monitoring,
    residents,
    rules,
    tasks,
)
from carecircle.platform.auth.ratelimit import LoginRateLimiter
from carecircle.platform.auth.service import Authenticator
from carecircle.platform.auth.tokens import TokenCodec, signing_secret
from carecircle.platform.dispatch.setup import build_service
from carecircle.platform.privacy.contacts import reading_cipher, writing_cipher
from carecircle.platform.settings import PlatformSettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def api_router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)
    for module in (
        auth,
        directory,
        residents,
        alerts,
        tasks,
        coverage,
        monitoring,
        rules,
        fhir,
        live,
    ):
        api.include_router(module.router)
    return api


def create_app(
    settings: PlatformSettings, clock: Clock | None = None, *, dashboard: bool = True
) -> FastAPI:
    """Build the API (and dashboard) app; the database pool opens when the app starts."""
    clock = clock or SystemClock()
    secret = signing_secret(settings.jwt_secret.get_secret_value(), settings.demo_mode)
    codec = TokenCodec(secret, timedelta(minutes=settings.access_token_minutes))
    limiter = LoginRateLimiter(clock, settings.login_burst, settings.login_refill_s)
    url = str(settings.database_url)
    # Dispatch's rules and travel model (no connections: the API only writes the task
    # tables and the outbox; the dispatcher process delivers notifications).
    dispatch_service = build_service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=settings.api_pool_size,
            kwargs={"autocommit": True, "connect_timeout": settings.db_connect_timeout_s},
            open=False,
            name="api",
        )
        pool.open(wait=True, timeout=settings.db_connect_timeout_s + 5)
        hub = LiveHub(url, settings.live_queue_size)
        hub.start()
        app.state.cc = AppState(
            settings=settings,
            clock=clock,
            codec=codec,
            limiter=limiter,
            pool=pool,
            hub=hub,
            auth=Authenticator(codec, limiter, clock, timedelta(days=settings.refresh_token_days)),
            dispatch=dispatch_service,
            pii=reading_cipher(settings),
            seal=writing_cipher(settings),
        )
        log.info("API ready (demo mode: %s)", settings.demo_mode)
        try:
            yield
        finally:
            hub.stop()
            pool.close()

    app = FastAPI(
        title="CareCircle API",
        version="1",
        description="Residents, devices, alerts and responders of the 15-minute care circle.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    errors.install(app)

    @app.get("/healthz", tags=["health"], include_in_schema=True)
    def healthz() -> dict[str, str]:
        """Liveness for load balancers and probes: the process serves requests (no database)."""
        return {"status": "ok"}

    app.include_router(api_router())
    if dashboard:
        from carecircle.platform.dashboard.pages import mount

        mount(app)
    return app
