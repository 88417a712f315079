"""Dashboard pages for care-centre staff: the live alert board, the map, residents.

Server-rendered with Jinja2; ``static/board.js`` (no build step, no CDN) keeps the
board live over the API's Server-Sent Events and posts staff actions to the API.
Sessions are cookies: the access token (HttpOnly), the refresh token (HttpOnly,
rotated by ``POST /session/refresh``) and a CSRF token the page echoes in a header.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from carecircle.common.errors import NotFound
from carecircle.platform.alerts.coverage import KINDS, Watch
from carecircle.platform.alerts.coverage_store import MonitoringReport
from carecircle.platform.api.deps import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, AppState
from carecircle.platform.api.repo import alerts as alerts_repo
from carecircle.platform.api.repo import audit, directory, vitals
from carecircle.platform.api.repo import coverage as coverage_repo
from carecircle.platform.api.repo import monitoring as monitoring_repo
from carecircle.platform.auth import scope, users
from carecircle.platform.auth.policy import Action, Principal, Role, require
from carecircle.platform.auth.service import LoginRefused, Session
from carecircle.platform.dashboard import charts
from carecircle.platform.dashboard.i18n import LANGS, translator

HERE = Path(__file__).parent
REFRESH_COOKIE = "cc_refresh"
LANG_COOKIE = "cc_lang"
DASHBOARD_ROLES = frozenset({Role.ADMIN, Role.STAFF})
CHART_CODES = ["heart_rate", "spo2", "respiratory_rate", "body_temperature", "room_temperature"]

templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


def _st(request: Request) -> AppState:
    st = request.app.state.cc
    assert isinstance(st, AppState)
    return st


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LANGS else "zh"


class _Redirect(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _set_session(request: Request, response: Response, s: Session, days: int) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        s.access_token,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=s.expires_in,
    )
    response.set_cookie(
        REFRESH_COOKIE,
        s.refresh_token,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=days * 86400,
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        samesite="strict",
        secure=secure,
        max_age=days * 86400,
    )


def _principal(request: Request, pending: list[Session]) -> Principal:
    """The signed-in staff member; refreshes an expired access cookie from the refresh one."""
    st = _st(request)
    with st.pool.connection() as conn:
        token = request.cookies.get(SESSION_COOKIE)
        user_id = st.codec.subject(token, st.clock.now()) if token else None
        user = users.by_id(conn, user_id) if user_id else None
        if user is None and request.cookies.get(REFRESH_COOKIE):
            try:
                session = st.auth.refresh(conn, request.cookies[REFRESH_COOKIE])
                user = session.user
                pending.append(session)
            except LoginRefused:
                user = None
    if user is None or user.disabled:
        raise _Redirect(RedirectResponse(f"/login?next={request.url.path}", status_code=303))
    p = user.principal()
    if p.role not in DASHBOARD_ROLES:
        t = translator(_lang(request))
        raise _Redirect(HTMLResponse(f"<p>{t('not_for_role')}</p>", status_code=403))
    return p


def _render(
    request: Request,
    name: str,
    p: Principal | None,
    pending: list[Session],
    status: int = 200,
    **ctx: Any,
) -> Response:
    lang = _lang(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": translator(lang),
            "lang": lang,
            "principal": p,
            "path": request.url.path,
            "tz": ZoneInfo(_st(request).settings.timezone),
            "now": _st(request).clock.now(),
            **ctx,
        },
        status_code=status,
    )
    _remember_lang(request, response)
    for s in pending:
        _set_session(request, response, s, _st(request).settings.refresh_token_days)
    return response


def _remember_lang(request: Request, response: Response) -> Response:
    """``?lang=`` switches the language for this and later pages (a cookie)."""
    lang = request.query_params.get("lang")
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def _guard(request: Request) -> tuple[Principal, list[Session]]:
    pending: list[Session] = []
    return _principal(request, pending), pending


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/board", status_code=303)


@router.get("/login")
def login_form(request: Request, error: str | None = None) -> Response:
    return _render(request, "login.html", None, [], error=error)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=200)] = "/board",
) -> Response:
    st = _st(request)
    client = request.client.host if request.client else "unknown"
    try:
        with st.pool.connection() as conn:
            session = st.auth.login(conn, username, password, client)
    except LoginRefused as err:
        key = "login_limited" if err.retry_after_s is not None else "login_failed"
        return _render(request, "login.html", None, [], error=key, status=401)
    target = next if next.startswith("/") and not next.startswith("//") else "/board"
    response = RedirectResponse(target, status_code=303)
    _set_session(request, response, session, st.settings.refresh_token_days)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    st = _st(request)
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        with st.pool.connection() as conn:
            st.auth.logout(conn, token)
    response = RedirectResponse("/login", status_code=303)
    for name in (SESSION_COOKIE, REFRESH_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name)
    return response


@router.post("/session/refresh")
def refresh_session(request: Request) -> Response:
    """Rotate the cookies (called by board.js before the access token expires)."""
    st = _st(request)
    sent = request.headers.get(CSRF_HEADER)
    if not sent or sent != request.cookies.get(CSRF_COOKIE):
        return Response(status_code=403)
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        return Response(status_code=401)
    try:
        with st.pool.connection() as conn:
            session = st.auth.refresh(conn, token)
    except LoginRefused:
        return Response(status_code=401)
    response = Response(status_code=204)
    _set_session(request, response, session, st.settings.refresh_token_days)
    return response


def _board_data(st: AppState, p: Principal) -> dict[str, Any]:
    with st.pool.connection() as conn:
        active, _ = alerts_repo.list_alerts(
            conn, p, alerts_repo.AlertFilter(active=True), limit=200, cursor=None
        )
        closed, _ = alerts_repo.list_alerts(
            conn,
            p,
            alerts_repo.AlertFilter(active=False, since=st.clock.now() - timedelta(days=1)),
            limit=20,
            cursor=None,
        )
        on_duty, _ = directory.list_responders(
            conn, p, availability="on_duty", limit=500, cursor=None
        )
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    active.sort(key=lambda a: (rank[a["severity"]], -a["opened_at"].timestamp()))
    nearest: dict[int, list[tuple[str, str, int]]] = {}
    for a in active:
        by_distance = sorted(
            (charts.distance_m(a["site_lat"], a["site_lon"], r["lat"], r["lon"]), r)
            for r in on_duty
        )
        nearest[a["id"]] = [(r["id"], r["display_name"], round(d)) for d, r in by_distance[:5]]
    return {"active": active, "closed": closed, "nearest": nearest}


@router.get("/board")
def board(request: Request) -> Response:
    try:
        p, pending = _guard(request)
    except _Redirect as redirect:
        return _remember_lang(request, redirect.response)
    return _render(request, "board.html", p, pending, **_board_data(_st(request), p))


@router.get("/board/rows")
def board_rows(request: Request) -> Response:
    """The board's table body, re-fetched by board.js when an alert changes."""
    try:
        p, pending = _guard(request)
    except _Redirect:
        return Response(status_code=401)
    return _render(request, "board_rows.html", p, pending, **_board_data(_st(request), p))


def monitoring_rows(report: MonitoringReport) -> list[tuple[str, int, int]]:
    """Per detection kind with a gap: (kind, residents not watched, partly watched)."""
    rows = []
    for kind in KINDS:
        found = [r.status(kind) for r in report.residents]
        missing, partial = found.count(Watch.NOT_WATCHED), found.count(Watch.PARTIAL)
        if missing or partial:
            rows.append((kind.value, missing, partial))
    return rows


@router.get("/map")
def map_page(request: Request) -> Response:
    try:
        p, pending = _guard(request)
    except _Redirect as redirect:
        return _remember_lang(request, redirect.response)
    st = _st(request)
    items: list[charts.MapItem] = []
    with st.pool.connection() as conn:
        sites, _ = directory.list_sites(conn, p, kinds=None, place_id=None, limit=500, cursor=None)
        people, _ = directory.list_responders(conn, p, availability=None, limit=500, cursor=None)
        active, _ = alerts_repo.list_alerts(
            conn, p, alerts_repo.AlertFilter(active=True), limit=500, cursor=None
        )
        # the same computation as GET /api/v1/coverage
        cov = coverage_repo.scoped(conn, p, st.dispatch, st.clock.now())
        # the same computation as GET /api/v1/monitoring-coverage
        mon = monitoring_repo.scoped(conn, p, st.clock.now())
    alerting = {a["site_id"] for a in active}
    for s in sites:
        kind = "household" if s["kind"] == "household" else "facility"
        items.append(
            charts.MapItem(kind, s["id"], s["name"], s["lat"], s["lon"], alert=s["id"] in alerting)
        )
    for r in people:
        items.append(
            charts.MapItem(
                "responder",
                r["id"],
                r["display_name"],
                r["lat"],
                r["lon"],
                on_duty=r["availability"] == "on_duty",
            )
        )
    return _render(
        request,
        "map.html",
        p,
        pending,
        svg=Markup(charts.map_svg(items)),  # noqa: S704 (built from escaped parts)
        coverage=cov,
        monitoring=monitoring_rows(mon),
        monitored=len(mon.residents),
        n_households=sum(1 for i in items if i.kind == "household"),
        n_facilities=sum(1 for i in items if i.kind == "facility"),
        n_on_duty=sum(1 for i in items if i.kind == "responder" and i.on_duty),
    )


@router.get("/residents/{resident_id}")
def resident_page(request: Request, resident_id: str) -> Response:
    try:
        p, pending = _guard(request)
    except _Redirect as redirect:
        return _remember_lang(request, redirect.response)
    st = _st(request)
    now = st.clock.now().astimezone(ZoneInfo(st.settings.timezone))
    with st.pool.connection() as conn:
        try:
            require(
                p, Action.RESIDENT_VITALS, scope.load(conn, "resident", resident_id), "resident"
            )
        except NotFound:
            return HTMLResponse("<p>404</p>", status_code=404)
        resident = directory.one(conn, directory.RESIDENT_SELECT, "r.id", resident_id)
        week = vitals.hourly(
            conn, resident_id, codes=None, since=now - timedelta(days=7), until=now
        )
        audit(conn, p.actor, "resident.read_vitals", "resident", resident_id, {"page": "dashboard"})
        recent, _ = alerts_repo.list_alerts(
            conn, p, alerts_repo.AlertFilter(resident_id=resident_id), limit=20, cursor=None
        )
    sections = []
    for span_key, start in (
        ("vitals_day", now - timedelta(days=1)),
        ("vitals_week", now - timedelta(days=7)),
    ):
        figures = []
        for code in CHART_CODES:
            pts = [
                charts.Point(r["bucket"], float(r["mean"]))
                for r in week
                if r["code"] == code and r["bucket"] >= start and r["mean"] is not None
            ]
            if pts:
                figures.append((code, Markup(charts.line_chart(pts, start, now))))  # noqa: S704
        act: dict[Any, float] = {}
        for r in week:
            if r["code"] in ("motion", "steps") and r["bucket"] >= start:
                act[r["bucket"]] = act.get(r["bucket"], 0.0) + float(r["mean"] or 0) * r["n"]
        act_pts = [charts.Point(b, v) for b, v in sorted(act.items())]
        activity = Markup(charts.line_chart(act_pts, start, now, bars=True)) if act_pts else None  # noqa: S704
        sections.append((span_key, figures, activity))
    return _render(
        request, "resident.html", p, pending, resident=resident, sections=sections, alerts=recent
    )


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: int) -> Response:
    try:
        p, pending = _guard(request)
    except _Redirect as redirect:
        return _remember_lang(request, redirect.response)
    st = _st(request)
    with st.pool.connection() as conn:
        try:
            require(p, Action.ALERT_READ, scope.load(conn, "alert", alert_id), "alert")
        except NotFound:
            return HTMLResponse("<p>404</p>", status_code=404)
        alert = alerts_repo.detail(conn, alert_id)
    return _render(request, "alert.html", p, pending, alert=alert)


#: The dashboard loads nothing from elsewhere: no CDN, no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if not request.url.path.startswith("/api/"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        else:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
