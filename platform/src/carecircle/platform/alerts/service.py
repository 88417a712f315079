"""What the API calls: rules (list/get/put/delete) and alert actions and queries.

Every function takes an open connection and the acting user; SQL stays here and in
:mod:`.store`/:mod:`.repository`, never in route handlers.  Errors are
:class:`~carecircle.platform.alerts.config.RuleInvalid` (refused rule, with the
reason), :class:`~carecircle.common.errors.NotFound` and
:class:`~carecircle.common.errors.Conflict` (map them to 422, 404 and 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from carecircle.common.errors import NotFound
from carecircle.platform.alerts import repository, store
from carecircle.platform.alerts.config import (
    RULE_MODELS,
    RuleBook,
    RuleInvalid,
    Scope,
    _Rule,
    check_consistency,
    parse_kind,
    validate_rule,
)
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.kinds import AlertKind
from carecircle.platform.alerts.lifecycle import Outcome, Status
from carecircle.platform.alerts.repository import AlertChange, Conn


# -- rules --------------------------------------------------------------------------------
def _check_scope(conn: Conn, scope: Scope, scope_id: str | None) -> None:
    if scope == "global":
        if scope_id is not None:
            raise RuleInvalid("a global rule has no scope id")
        return
    if scope_id is None:
        raise RuleInvalid(f"a {scope} rule needs the {scope} id")
    table = "sites" if scope == "site" else "residents"
    row = conn.execute(
        f"SELECT 1 FROM {table} WHERE id = %s",  # noqa: S608 - table is one of two names
        (scope_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"{scope} {scope_id} not found")


def _where(conn: Conn, scope: Scope, scope_id: str | None) -> dict[str, Any]:
    if scope == "resident" and scope_id is not None:
        ctx: ResidentCtx | None = store.residents(conn, [scope_id]).get(scope_id)
        if ctx is None:
            raise NotFound(f"resident {scope_id} not found")
        return ctx.where()
    if scope == "site":
        return {"site_id": scope_id}
    return {}


def effective_rules(conn: Conn, scope: Scope, scope_id: str | None) -> dict[str, dict[str, Any]]:
    """Every configurable kind's effective parameters at a scope, with where they come from."""
    _check_scope(conn, scope, scope_id)
    rows = store.load_rules(conn)
    book = RuleBook(rows)
    where = _where(conn, scope, scope_id)
    stored = {(r.scope, r.scope_id, r.kind.value): r for r in rows}
    out: dict[str, dict[str, Any]] = {}
    for kind in RULE_MODELS:
        params, enabled = book.params(kind, **where)
        origin = "default"
        for s, sid in (
            ("resident", where.get("resident_id")),
            ("site", where.get("site_id")),
            ("global", None),
        ):
            if (s, sid, kind.value) in stored and (s == "global" or sid is not None):
                origin = s
                break
        try:
            rule = validate_rule(kind, params)
            full = rule.model_dump(mode="json")
        except RuleInvalid as err:
            full = {"invalid": str(err), **params}
        out[kind.value] = {"params": full, "enabled": enabled, "origin": origin}
    return out


def get_rule(conn: Conn, scope: Scope, scope_id: str | None, kind: str) -> dict[str, Any]:
    k = parse_kind(kind)
    return effective_rules(conn, scope, scope_id)[k.value]


def put_rule(
    conn: Conn,
    scope: Scope,
    scope_id: str | None,
    kind: str,
    params: Mapping[str, Any],
    *,
    enabled: bool = True,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    """Validate and store a rule; refuse it (``RuleInvalid``) with the reason if it cannot
    fire, contradicts itself, or contradicts the other rules that apply at that scope."""
    k = parse_kind(kind)
    _check_scope(conn, scope, scope_id)
    rule = validate_rule(k, params)
    where = _where(conn, scope, scope_id)
    book = RuleBook(store.load_rules(conn))
    together: dict[AlertKind, _Rule] = {}
    for other in RULE_MODELS:
        if other is k:
            together[other] = rule
            continue
        try:
            r = book.rule(other, **where)
        except RuleInvalid:
            continue
        if r is not None:
            together[other] = r
    if enabled:
        problems = check_consistency(together)
        if problems:
            raise RuleInvalid("; ".join(problems))
    stored = rule.model_dump(mode="json")
    store.put_rule(conn, scope, scope_id, k.value, stored, enabled, actor, at)
    return {
        "kind": k.value,
        "scope": scope,
        "scope_id": scope_id,
        "params": stored,
        "enabled": enabled,
    }


def delete_rule(
    conn: Conn, scope: Scope, scope_id: str | None, kind: str, *, actor: str, at: datetime
) -> None:
    k = parse_kind(kind)
    if not store.delete_rule(conn, scope, scope_id, k.value, actor, at):
        raise NotFound(f"no {k.value} rule stored for {scope} {scope_id or ''}".strip())


# -- alerts -------------------------------------------------------------------------------
def acknowledge(
    conn: Conn, alert_id: int, *, actor: str, at: datetime, note: str = ""
) -> AlertChange:
    return repository.transition(conn, alert_id, Status.ACKNOWLEDGED, actor=actor, at=at, note=note)


def resolve(
    conn: Conn, alert_id: int, outcome: Outcome, *, actor: str, at: datetime, note: str = ""
) -> AlertChange:
    return repository.transition(
        conn, alert_id, Status.RESOLVED, actor=actor, at=at, note=note, outcome=outcome
    )


def cancel(conn: Conn, alert_id: int, *, actor: str, at: datetime, note: str = "") -> AlertChange:
    return repository.transition(conn, alert_id, Status.CANCELLED, actor=actor, at=at, note=note)


def snooze(
    conn: Conn, alert_id: int, until: datetime | None, *, actor: str, at: datetime, note: str = ""
) -> AlertChange:
    return repository.snooze(conn, alert_id, until, actor=actor, at=at, note=note)


def comment(conn: Conn, alert_id: int, note: str, *, actor: str, at: datetime) -> int:
    """Add a note to an alert (in ``alert_comments``); returns the comment id."""
    if not note.strip():
        raise RuleInvalid("a comment needs some text")
    return repository.comment(conn, alert_id, note, actor=actor, at=at)


def get_alert(conn: Conn, alert_id: int, *, with_trail: bool = True) -> dict[str, Any]:
    alert = repository.get(conn, alert_id)
    if with_trail:
        with conn.cursor(row_factory=dict_row) as cur:
            alert["trail"] = cur.execute(
                "SELECT at, from_status, to_status, actor, note FROM alert_transitions "
                "WHERE alert_id = %s ORDER BY at, id",
                (alert_id,),
            ).fetchall()
    return alert


def list_alerts(
    conn: Conn,
    *,
    site_ids: list[str] | None = None,
    resident_id: str | None = None,
    kinds: list[str] | None = None,
    statuses: list[str] | None = None,
    active_only: bool = False,
    include_snoozed: bool = True,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered; ``site_ids`` restricts to what the caller may see."""
    clauses: list[str] = []
    args: list[Any] = []
    if site_ids is not None:
        clauses.append("site_id = ANY(%s)")
        args.append(site_ids)
    if resident_id is not None:
        clauses.append("resident_id = %s")
        args.append(resident_id)
    if kinds:
        clauses.append("kind = ANY(%s)")
        args.append(kinds)
    if statuses:
        for s in statuses:
            Status(s)  # refuse unknown statuses
        clauses.append("status = ANY(%s)")
        args.append(statuses)
    if active_only:
        clauses.append("status NOT IN ('resolved', 'cancelled')")
    if not include_snoozed:
        if now is None:
            raise ValueError("include_snoozed=False needs now")
        clauses.append("(snoozed_until IS NULL OR snoozed_until <= %s)")
        args.append(now)
    if since is not None:
        clauses.append("opened_at >= %s")
        args.append(since)
    if until is not None:
        clauses.append("opened_at < %s")
        args.append(until)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    args += [max(1, min(limit, 1000)), max(0, offset)]
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT * FROM alerts {where} ORDER BY opened_at DESC, id DESC "  # noqa: S608
            "LIMIT %s OFFSET %s",
            args,
        ).fetchall()
