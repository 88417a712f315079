"""Who may do what to which object: pure functions over typed data.

A :class:`Principal` is a signed-in user (or an API key acting for one) with one
role and one scope:

==========  ============================================  =================================
role        scope                                         sees
==========  ============================================  =================================
admin       a place (prefecture or county)                everything under that place
staff       a township place, or one facility site        sites/residents/alerts in scope
responder   their responder id                            alerts assigned to them and the
                                                          residents on those alerts
family      their family member id                        linked residents, limited by the
                                                          link's consent
==========  ============================================  =================================

A :class:`Resource` carries the facts about one object that decide access (where it
is in the place tree, which sites it belongs to, who is linked to it).  Repositories
load those facts; :func:`can` decides.  For lists, :mod:`carecircle.platform.auth.scope`
applies the same rules in SQL, and the authorization matrix test checks both agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from carecircle.common.errors import NotFound, PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    RESPONDER = "responder"
    FAMILY = "family"


class Action(StrEnum):
    PLACE_READ = "place.read"
    SITE_READ = "site.read"
    SITE_WRITE = "site.write"
    RESIDENT_READ = "resident.read"
    RESIDENT_VITALS = "resident.vitals"  # readings, rollups, FHIR export
    RESIDENT_LOCATION = "resident.location"  # address and coordinates of the home
    RESIDENT_SUMMARY = "resident.summary"  # daily wellbeing summary, status now
    DEVICE_READ = "device.read"
    DEVICE_WRITE = "device.write"
    GATEWAY_READ = "gateway.read"
    GATEWAY_WRITE = "gateway.write"  # provisioning and credentials
    RESPONDER_READ = "responder.read"
    ALERT_READ = "alert.read"
    ALERT_ACT = "alert.act"  # acknowledge, dispatch, resolve, cancel, snooze
    ALERT_COMMENT = "alert.comment"
    LIVE = "live"  # the live stream of alert changes
    TASK_READ = "task.read"  # dispatch tasks of alerts in scope
    TASK_ACT = "task.act"  # a responder's own tasks: accept, decline, ..., availability
    COVERAGE_READ = "coverage.read"  # coverage of the 15-minute circle; monitoring coverage
    RULE_READ = "rule.read"  # effective alert rules
    RULE_WRITE = "rule.write"  # store or delete alert rules


_READS = frozenset(
    {
        Action.PLACE_READ,
        Action.SITE_READ,
        Action.RESIDENT_READ,
        Action.RESIDENT_VITALS,
        Action.RESIDENT_LOCATION,
        Action.RESIDENT_SUMMARY,
        Action.DEVICE_READ,
        Action.GATEWAY_READ,
        Action.RESPONDER_READ,
        Action.ALERT_READ,
        Action.LIVE,
        Action.TASK_READ,
        Action.COVERAGE_READ,
        Action.RULE_READ,
    }
)

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action) - {Action.TASK_ACT},  # tasks are a responder's own
    Role.STAFF: _READS | {Action.ALERT_ACT, Action.ALERT_COMMENT, Action.RULE_WRITE},
    Role.RESPONDER: frozenset(
        {
            Action.RESIDENT_READ,
            Action.RESIDENT_LOCATION,
            Action.ALERT_READ,
            Action.ALERT_COMMENT,
            Action.LIVE,
            Action.TASK_ACT,
        }
    ),
    Role.FAMILY: frozenset(
        {
            Action.RESIDENT_READ,
            Action.RESIDENT_VITALS,
            Action.RESIDENT_LOCATION,
            Action.RESIDENT_SUMMARY,
            Action.ALERT_READ,
            Action.LIVE,
        }
    ),
}

#: Which consent flag of a family link an action needs (``None``: the link suffices).
FAMILY_CONSENT: dict[Action, str | None] = {
    Action.RESIDENT_READ: None,
    Action.RESIDENT_VITALS: "vitals",
    Action.RESIDENT_LOCATION: "location",
    Action.RESIDENT_SUMMARY: "daily_summary",
    Action.ALERT_READ: "alerts",
    Action.LIVE: "alerts",
}

#: Shorthand scopes an API key may be given, besides single action names.
KEY_SCOPE_GROUPS: dict[str, frozenset[Action]] = {
    "read": _READS,
    "alerts:write": frozenset({Action.ALERT_ACT, Action.ALERT_COMMENT}),
    "fhir": frozenset({Action.RESIDENT_READ, Action.RESIDENT_VITALS}),
    "tasks": frozenset({Action.TASK_ACT, Action.ALERT_READ, Action.ALERT_COMMENT}),
    "rules:write": frozenset({Action.RULE_READ, Action.RULE_WRITE}),
}


def expand_scopes(scopes: list[str]) -> frozenset[Action]:
    """Turn API-key scopes (group names or action names) into actions; ValueError if unknown."""
    out: set[Action] = set()
    for scope in scopes:
        if scope in KEY_SCOPE_GROUPS:
            out |= KEY_SCOPE_GROUPS[scope]
        else:
            out.add(Action(scope))
    return frozenset(out)


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    place_id: str | None = None
    site_id: str | None = None
    responder_id: str | None = None
    family_member_id: str | None = None
    #: An API key's actions; ``None`` for an interactive login (the role decides).
    key_actions: frozenset[Action] | None = None
    username: str = ""

    @property
    def actor(self) -> str:
        """How this principal is named in alert transitions and the audit log."""
        return f"user:{self.user_id}"

    def allowed(self, action: Action) -> bool:
        """May this role (and key) do ``action`` at all, on anything?"""
        if action not in ROLE_ACTIONS[self.role]:
            return False
        return self.key_actions is None or action in self.key_actions


@dataclass(frozen=True)
class Resource:
    """The facts about one object that decide who may touch it."""

    kind: str
    id: str
    #: The object's place and its ancestors (prefecture first).
    place_path: tuple[str, ...] = ()
    #: Sites the object belongs to: the site itself, a resident's home and day-care site.
    site_ids: frozenset[str] = frozenset()
    #: Family members linked to the object's resident, with each link's consent.
    family_consent: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    #: Responders assigned to the object (an alert, or an alert on the resident).
    responders: frozenset[str] = frozenset()
    #: The object is (or is about) a resident.
    has_resident: bool = False


def in_scope(p: Principal, r: Resource) -> bool:
    """Is the object inside the principal's scope at all (ignoring consent)?"""
    if p.role is Role.ADMIN:
        return p.place_id is not None and p.place_id in r.place_path
    if p.role is Role.STAFF:
        if p.site_id is not None:
            return p.site_id in r.site_ids
        return p.place_id is not None and p.place_id in r.place_path
    if p.role is Role.RESPONDER:
        return p.responder_id is not None and p.responder_id in r.responders
    return r.has_resident and p.family_member_id in r.family_consent


def can(p: Principal, action: Action, r: Resource) -> bool:
    """May ``p`` do ``action`` to the object described by ``r``?"""
    if not p.allowed(action) or not in_scope(p, r):
        return False
    if p.role is Role.FAMILY:
        assert p.family_member_id is not None
        flag = FAMILY_CONSENT.get(action)
        consent = r.family_consent[p.family_member_id]
        return flag is None or bool(consent.get(flag, False))
    return True


def require(p: Principal, action: Action, r: Resource | None, what: str) -> Resource:
    """Return ``r`` if ``p`` may do ``action``; else raise.

    An object the principal may not even read is reported exactly like a missing one
    (:class:`NotFound`), so ids outside one's scope cannot be probed.  An object they
    may read but not change gives :class:`PermissionDenied`.
    """
    if r is None or not in_scope(p, r) or not can(p, _read_action(r.kind), r):
        raise NotFound(f"{what} not found")
    if not can(p, action, r):
        raise PermissionDenied(f"not allowed: {action.value} on this {r.kind}")
    return r


def require_role(p: Principal, action: Action) -> None:
    """Refuse an endpoint the principal's role (or key) cannot use on any object."""
    if not p.allowed(action):
        raise PermissionDenied(f"not allowed: {action.value}")


_READ_OF_KIND: dict[str, Action] = {
    "place": Action.PLACE_READ,
    "site": Action.SITE_READ,
    "resident": Action.RESIDENT_READ,
    "device": Action.DEVICE_READ,
    "gateway": Action.GATEWAY_READ,
    "alert": Action.ALERT_READ,
    "responder": Action.RESPONDER_READ,
}


def _read_action(kind: str) -> Action:
    return _READ_OF_KIND[kind]
