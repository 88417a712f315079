"""Alert rules: the effective parameters of every configurable kind, and a site's or a
resident's own rules (store, delete), through :mod:`carecircle.platform.alerts.service`.

Admins configure the sites and residents under their place, staff those of their
township or facility; responders and family members are refused (403).  Global rules
apply to every prefecture, so they are read-only here (``carecircle alerts`` sets
them).  A rule that cannot fire or contradicts the rules applying with it is refused
with 422 and the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from carecircle.platform.alerts import service as rules_service
from carecircle.platform.alerts.config import Scope
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.models import EffectiveRuleOut, RuleIn, RuleOut
from carecircle.platform.api.params import IdPath
from carecircle.platform.api.repo import Conn
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, Principal, require, require_role

router = APIRouter(tags=["rules"])

Kind = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
SiteId = IdPath
ResidentId = IdPath

_READ_OF_SCOPE = {"site": Action.SITE_READ, "resident": Action.RESIDENT_READ}


def _access(conn: Conn, p: Principal, where: Scope, object_id: str, action: Action) -> None:
    require_role(p, action)
    require(p, _READ_OF_SCOPE[where], scope.load(conn, where, object_id), where)


def _effective(conn: Conn, where: Scope, object_id: str | None) -> list[EffectiveRuleOut]:
    rules = rules_service.effective_rules(conn, where, object_id)
    return [EffectiveRuleOut.model_validate({"kind": k, **v}) for k, v in rules.items()]


def _one(conn: Conn, where: Scope, object_id: str | None, kind: str) -> EffectiveRuleOut:
    rule = rules_service.get_rule(conn, where, object_id, kind)
    return EffectiveRuleOut.model_validate({"kind": kind, **rule})


@router.get("/rules", response_model=list[EffectiveRuleOut])
def global_rules(p: PrincipalDep, conn: ConnDep) -> list[EffectiveRuleOut]:
    """The rules every site starts from (defaults and global overrides)."""
    require_role(p, Action.RULE_READ)
    return _effective(conn, "global", None)


@router.get("/rules/sites/{site_id}", response_model=list[EffectiveRuleOut])
def site_rules(site_id: SiteId, p: PrincipalDep, conn: ConnDep) -> list[EffectiveRuleOut]:
    """The effective rules at a site, each with where its parameters come from."""
    _access(conn, p, "site", site_id, Action.RULE_READ)
    return _effective(conn, "site", site_id)


@router.get("/rules/sites/{site_id}/{kind}", response_model=EffectiveRuleOut)
def site_rule(site_id: SiteId, kind: Kind, p: PrincipalDep, conn: ConnDep) -> EffectiveRuleOut:
    _access(conn, p, "site", site_id, Action.RULE_READ)
    return _one(conn, "site", site_id, kind)


@router.put("/rules/sites/{site_id}/{kind}", response_model=RuleOut)
def put_site_rule(
    site_id: SiteId, kind: Kind, body: RuleIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> RuleOut:
    """Store the site's own rule for ``kind`` (422 with the reason if it is refused)."""
    _access(conn, p, "site", site_id, Action.RULE_WRITE)
    return _put(conn, st, p, "site", site_id, kind, body)


@router.delete("/rules/sites/{site_id}/{kind}", status_code=204)
def delete_site_rule(
    site_id: SiteId, kind: Kind, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> None:
    """Drop the site's own rule; the global rule or default applies again."""
    _access(conn, p, "site", site_id, Action.RULE_WRITE)
    rules_service.delete_rule(conn, "site", site_id, kind, actor=p.actor, at=st.clock.now())


@router.get("/rules/residents/{resident_id}", response_model=list[EffectiveRuleOut])
def resident_rules(
    resident_id: ResidentId, p: PrincipalDep, conn: ConnDep
) -> list[EffectiveRuleOut]:
    """The effective rules for a resident (resident, then site, then global)."""
    _access(conn, p, "resident", resident_id, Action.RULE_READ)
    return _effective(conn, "resident", resident_id)


@router.get("/rules/residents/{resident_id}/{kind}", response_model=EffectiveRuleOut)
def resident_rule(
    resident_id: ResidentId, kind: Kind, p: PrincipalDep, conn: ConnDep
) -> EffectiveRuleOut:
    _access(conn, p, "resident", resident_id, Action.RULE_READ)
    return _one(conn, "resident", resident_id, kind)


@router.put("/rules/residents/{resident_id}/{kind}", response_model=RuleOut)
def put_resident_rule(
    resident_id: ResidentId,
    kind: Kind,
    body: RuleIn,
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
) -> RuleOut:
    """Store the resident's own rule for ``kind`` (422 with the reason if refused)."""
    _access(conn, p, "resident", resident_id, Action.RULE_WRITE)
    return _put(conn, st, p, "resident", resident_id, kind, body)


@router.delete("/rules/residents/{resident_id}/{kind}", status_code=204)
def delete_resident_rule(
    resident_id: ResidentId, kind: Kind, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> None:
    """Drop the resident's own rule."""
    _access(conn, p, "resident", resident_id, Action.RULE_WRITE)
    rules_service.delete_rule(conn, "resident", resident_id, kind, actor=p.actor, at=st.clock.now())


def _put(
    conn: Conn, st: StateDep, p: Principal, where: Scope, object_id: str, kind: str, body: RuleIn
) -> RuleOut:
    stored = rules_service.put_rule(
        conn,
        where,
        object_id,
        kind,
        body.params,
        enabled=body.enabled,
        actor=p.actor,
        at=st.clock.now(),
    )
    return RuleOut.model_validate(stored)
