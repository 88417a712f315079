"""The authorization matrix: every API route × every role × own/other scope.

The routes are enumerated from the app, so a new route without an entry here fails
``test_every_route_has_a_matrix_entry``.  For each role an "own" object is one in its
scope (world 1) and an "other" object is in another prefecture (world 2): allowed
calls on own objects must succeed, every call on other objects must be refused, and
an object outside one's scope answers exactly like a missing one (404, same body).
Lists must contain the own object, never the other one, and every item they return
must be readable through its detail route by the same caller (SQL filter ≡ policy).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

ROLES = ["admin", "staff", "staff_fac", "responder", "family"]
ALL = frozenset(ROLES)
STAFFISH = frozenset({"admin", "staff", "staff_fac"})

#: The object of each kind that is in each role's scope (keys into World.ids/alerts).
OWN: dict[str, dict[str, str]] = {
    "admin": {
        "place": "v1",
        "site": "h1",
        "resident": "r1",
        "device": "d1",
        "gateway": "g1",
        "alert": "a1",
        "responder": "resp1",
    },
    "staff": {
        "place": "v1",
        "site": "h1",
        "resident": "r1",
        "device": "d1",
        "gateway": "g1",
        "alert": "a1",
        "responder": "resp1",
    },
    # A facility's staff: their nursing home; world-1 places and households are not theirs.
    "staff_fac": {
        "place": "v1",
        "site": "n1",
        "resident": "rn",
        "device": "dn",
        "gateway": "gn",
        "alert": "an",
        "responder": "resp1",
    },
    "responder": {
        "place": "v1",
        "site": "h1",
        "resident": "r1",
        "device": "d1",
        "gateway": "g1",
        "alert": "a1",
        "responder": "resp1",
        "task": "task1",
    },
    "family": {
        "place": "v1",
        "site": "h1",
        "resident": "r1",
        "device": "d1",
        "gateway": "g1",
        "alert": "a1",
        "responder": "resp1",
    },
}
OTHER = {
    "place": "v2",
    "site": "h2",
    "resident": "r2",
    "device": "d2",
    "gateway": "g2",
    "alert": "a2",
    "responder": "resp2",
    "task": "task2",
}
#: Where a fresh alert for a role's "own" write test is raised.
OWN_ALERT_SITE = {
    "admin": "h1",
    "staff": "h1",
    "staff_fac": "n1",
    "responder": "h1",
    "family": "h1",
}


@dataclass(frozen=True)
class Spec:
    """What each role may do on a route.

    ``ok``: roles for which the call on their own object succeeds with ``status``.
    ``role_denied``: roles refused outright (403 on any object).
    Every other role gets ``own_denied`` on its own object; every role gets 404 on the
    other world's object unless it is in ``role_denied``.
    """

    kind: str  # object kind of the path/query parameter, or "list:<kind>", or "self"
    ok: frozenset[str]
    role_denied: frozenset[str] = frozenset()
    own_denied: int = 404
    status: int = 200
    body: Callable[[Any, str, str], dict[str, Any]] | None = None  # (world, role, which)
    fresh_alert: bool = False
    detail: str | None = None  # for lists: the detail route of an item
    query: str | None = None  # the object id goes in this query parameter
    own_absent: frozenset[str] = frozenset()  # lists: roles whose "own" object is not listed
    #: Tasks: the state the responder's own task is brought to first (via the API).
    task_steps: tuple[str, ...] = ()
    #: Other path parameters, filled before the object id goes in.
    fill: tuple[tuple[str, str], ...] = ()
    #: Run on the own object before the call (role, object id), e.g. store a rule.
    setup: Callable[[Any, str, str], None] | None = None
    #: Make a fresh object at a site key (h1, n1, h2) instead of using the world's own one
    #: (for calls that change it for good, such as retiring a device).
    fresh: Callable[[Any, str], str] | None = None


def _uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def site_body(world: Any, role: str, which: str) -> dict[str, Any]:
    place = world["v1" if which == "own" else "v2"]
    return {
        "id": _uid("s"),
        "kind": "household",
        "place_id": place,
        "name": "New home",
        "lat": 30.2,
        "lon": 120.2,
    }


def gateway_body(world: Any, role: str, which: str) -> dict[str, Any]:
    return {"id": _uid("g"), "site_id": world["h1" if which == "own" else "h2"]}


def device_body(world: Any, role: str, which: str) -> dict[str, Any]:
    site = world["h1" if which == "own" else "h2"]
    return {
        "id": _uid("d"),
        "site_id": site,
        "family": "zigbee2mqtt",
        "native_id": _uid("n"),
        "type": "motion_sensor",
    }


def empty(world: Any, role: str, which: str) -> dict[str, Any]:
    return {}


RESPONDER = frozenset({"responder"})
TASK = dict(kind="task", ok=RESPONDER, role_denied=ALL - RESPONDER)
RULES = frozenset({"responder", "family"})


def store_rule(world: Any, role: str, obj: str) -> None:
    """A stored fall rule on the site or resident ``obj`` (for the delete routes)."""
    where = "resident" if obj in (world["r1"], world["rn"]) else "site"
    world.conn.execute(
        "INSERT INTO alert_rules (scope, scope_id, kind, params, enabled, updated_by, "
        "updated_at) VALUES (%s, %s, 'fall', '{}', true, 'test', now()) "
        "ON CONFLICT DO NOTHING",
        (where, obj),
    )


ACT = dict(
    kind="alert", ok=STAFFISH, role_denied=frozenset({"responder", "family"}), fresh_alert=True
)
VITALS = dict(kind="resident", ok=STAFFISH, own_denied=403)

MATRIX: dict[tuple[str, str], Spec | str] = {
    # sign-in and session routes take no principal: tested in test_api_auth.py
    ("POST", "/api/v1/auth/token"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("POST", "/api/v1/auth/logout"): "public",
    # the live stream is scope-filtered per event: tested in test_api_live.py
    ("GET", "/api/v1/live"): "stream",
    ("GET", "/api/v1/me"): Spec("self", ALL),
    ("GET", "/api/v1/auth/api-keys"): Spec("self", ALL),
    ("POST", "/api/v1/auth/api-keys"): Spec(
        "self", ALL, status=201, body=lambda w, r, o: {"name": "k", "scopes": ["alert.read"]}
    ),
    ("DELETE", "/api/v1/auth/api-keys/{key_id}"): Spec("api_key", ALL, status=204),
    ("GET", "/api/v1/places"): Spec(
        "list:place",
        frozenset({"admin", "staff", "staff_fac"}),
        role_denied=frozenset({"responder", "family"}),
        detail="/api/v1/places/{}",
        own_absent=frozenset({"staff_fac"}),
    ),
    ("GET", "/api/v1/places/{place_id}"): Spec(
        "place", frozenset({"admin", "staff"}), role_denied=frozenset({"responder", "family"})
    ),
    ("GET", "/api/v1/sites"): Spec(
        "list:site",
        STAFFISH,
        role_denied=frozenset({"responder", "family"}),
        detail="/api/v1/sites/{}",
    ),
    ("GET", "/api/v1/households"): Spec(
        "list:site",
        STAFFISH,
        role_denied=frozenset({"responder", "family"}),
        detail="/api/v1/sites/{}",
        own_absent=frozenset({"staff_fac"}),
    ),
    ("GET", "/api/v1/facilities"): Spec(
        "list:site",
        STAFFISH,
        role_denied=frozenset({"responder", "family"}),
        detail="/api/v1/sites/{}",
        own_absent=frozenset({"admin", "staff"}),
    ),
    ("GET", "/api/v1/sites/{site_id}"): Spec(
        "site", STAFFISH, role_denied=frozenset({"responder", "family"})
    ),
    ("POST", "/api/v1/sites"): Spec(
        "body", frozenset({"admin"}), role_denied=ALL - {"admin"}, status=201, body=site_body
    ),
    ("GET", "/api/v1/residents"): Spec("list:resident", ALL, detail="/api/v1/residents/{}"),
    ("GET", "/api/v1/residents/{resident_id}"): Spec("resident", ALL),
    ("GET", "/api/v1/residents/{resident_id}/readings"): Spec(**VITALS),  # type: ignore[arg-type]
    ("GET", "/api/v1/residents/{resident_id}/rollups"): Spec(**VITALS),  # type: ignore[arg-type]
    ("GET", "/api/v1/fhir/Observation"): Spec(
        "resident", STAFFISH, own_denied=403, query="patient"
    ),
    ("GET", "/api/v1/residents/{resident_id}/status"): Spec(
        "resident", STAFFISH | {"family"}, own_denied=403
    ),
    ("GET", "/api/v1/residents/{resident_id}/summary"): Spec(
        "resident", STAFFISH | {"family"}, own_denied=403
    ),
    ("GET", "/api/v1/family/residents"): Spec(
        "list:resident", frozenset({"family"}), role_denied=ALL - {"family"}
    ),
    ("GET", "/api/v1/devices"): Spec(
        "list:device",
        STAFFISH,
        role_denied=frozenset({"responder", "family"}),
        detail="/api/v1/devices/{}",
    ),
    ("GET", "/api/v1/devices/{device_id}"): Spec(
        "device", STAFFISH, role_denied=frozenset({"responder", "family"})
    ),
    ("DELETE", "/api/v1/devices/{device_id}"): Spec(
        "device",
        frozenset({"admin"}),
        role_denied=ALL - {"admin"},
        fresh=lambda w, where: w.new_device(where),
    ),
    ("GET", "/api/v1/gateways"): Spec(
        "list:gateway",
        STAFFISH,
        role_denied=frozenset({"responder", "family"}),
        detail="/api/v1/gateways/{}",
    ),
    ("GET", "/api/v1/gateways/{gateway_id}"): Spec(
        "gateway", STAFFISH, role_denied=frozenset({"responder", "family"})
    ),
    ("POST", "/api/v1/gateways"): Spec(
        "body", frozenset({"admin"}), role_denied=ALL - {"admin"}, status=201, body=gateway_body
    ),
    ("DELETE", "/api/v1/gateways/{gateway_id}"): Spec(
        "gateway",
        frozenset({"admin"}),
        role_denied=ALL - {"admin"},
        fresh=lambda w, where: w.new_gateway(where),
    ),
    ("POST", "/api/v1/gateways/{gateway_id}/credentials"): Spec(
        "gateway", frozenset({"admin"}), role_denied=ALL - {"admin"}
    ),
    ("POST", "/api/v1/gateways/{gateway_id}/devices"): Spec(
        "gateway",
        frozenset({"admin"}),
        role_denied=ALL - {"admin"},
        status=201,
        body=device_body,
    ),
    ("GET", "/api/v1/responders"): Spec(
        "list:responder",
        STAFFISH,
        role_denied=frozenset({"responder", "family"}),
        own_absent=frozenset({"staff_fac"}),
    ),
    ("GET", "/api/v1/alerts"): Spec("list:alert", ALL, detail="/api/v1/alerts/{}"),
    ("GET", "/api/v1/alerts/{alert_id}"): Spec("alert", ALL),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): Spec(**ACT, body=empty),  # type: ignore[arg-type]
    ("POST", "/api/v1/alerts/{alert_id}/dispatch"): Spec(**ACT, body=empty),  # type: ignore[arg-type]
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): Spec(  # type: ignore[arg-type]
        **ACT, body=lambda w, r, o: {"outcome": "false_alarm"}
    ),
    ("POST", "/api/v1/alerts/{alert_id}/cancel"): Spec(**ACT, body=empty),  # type: ignore[arg-type]
    ("POST", "/api/v1/alerts/{alert_id}/snooze"): Spec(  # type: ignore[arg-type]
        **ACT, body=lambda w, r, o: {"minutes": 30}
    ),
    ("POST", "/api/v1/alerts/{alert_id}/comments"): Spec(
        "alert",
        STAFFISH | {"responder"},
        role_denied=frozenset({"family"}),
        status=201,
        fresh_alert=True,
        body=lambda w, r, o: {"body": "called the daughter"},
    ),
    # dispatch tasks: a responder acts on their own tasks only
    ("GET", "/api/v1/tasks"): Spec("list:task", RESPONDER, role_denied=ALL - RESPONDER),
    ("POST", "/api/v1/tasks/{task_id}/accept"): Spec(**TASK),  # type: ignore[arg-type]
    ("POST", "/api/v1/tasks/{task_id}/decline"): Spec(**TASK, body=empty),  # type: ignore[arg-type]
    ("POST", "/api/v1/tasks/{task_id}/en-route"): Spec(**TASK, task_steps=("accept",)),  # type: ignore[arg-type]
    ("POST", "/api/v1/tasks/{task_id}/on-scene"): Spec(**TASK, task_steps=("accept",)),  # type: ignore[arg-type]
    ("POST", "/api/v1/tasks/{task_id}/resolve"): Spec(  # type: ignore[arg-type]
        **TASK, task_steps=("accept",), body=lambda w, r, o: {"outcome": "resident_fine"}
    ),
    ("POST", "/api/v1/tasks/{task_id}/hand-over"): Spec(  # type: ignore[arg-type]
        **TASK, task_steps=("accept", "on-scene"), body=empty
    ),
    ("PUT", "/api/v1/me/availability"): Spec(
        "self",
        RESPONDER,
        role_denied=ALL - RESPONDER,
        body=lambda w, r, o: {"availability": "on_duty"},
    ),
    ("GET", "/api/v1/alerts/{alert_id}/tasks"): Spec(
        "alert", STAFFISH, role_denied=frozenset({"responder", "family"})
    ),
    ("GET", "/api/v1/coverage"): Spec("self", STAFFISH, role_denied=RULES),
    # monitoring coverage: the report like /coverage; one resident's like /status
    ("GET", "/api/v1/monitoring-coverage"): Spec("self", STAFFISH, role_denied=RULES),
    ("GET", "/api/v1/residents/{resident_id}/monitoring-coverage"): Spec(
        "resident", STAFFISH | {"family"}, own_denied=403
    ),
    # alert rules: admins and staff on the sites and residents in their scope
    ("GET", "/api/v1/rules"): Spec("self", STAFFISH, role_denied=RULES),
    ("GET", "/api/v1/rules/sites/{site_id}"): Spec("site", STAFFISH, role_denied=RULES),
    ("GET", "/api/v1/rules/sites/{site_id}/{kind}"): Spec(
        "site", STAFFISH, role_denied=RULES, fill=(("kind", "fall"),)
    ),
    ("PUT", "/api/v1/rules/sites/{site_id}/{kind}"): Spec(
        "site",
        STAFFISH,
        role_denied=RULES,
        fill=(("kind", "cold_room"),),
        body=lambda w, r, o: {"params": {"threshold": 11}},
    ),
    ("DELETE", "/api/v1/rules/sites/{site_id}/{kind}"): Spec(
        "site", STAFFISH, role_denied=RULES, fill=(("kind", "fall"),), status=204, setup=store_rule
    ),
    ("GET", "/api/v1/rules/residents/{resident_id}"): Spec("resident", STAFFISH, role_denied=RULES),
    ("GET", "/api/v1/rules/residents/{resident_id}/{kind}"): Spec(
        "resident", STAFFISH, role_denied=RULES, fill=(("kind", "fall"),)
    ),
    ("PUT", "/api/v1/rules/residents/{resident_id}/{kind}"): Spec(
        "resident",
        STAFFISH,
        role_denied=RULES,
        fill=(("kind", "cold_room"),),
        body=lambda w, r, o: {"params": {"threshold": 11}},
    ),
    ("DELETE", "/api/v1/rules/residents/{resident_id}/{kind}"): Spec(
        "resident",
        STAFFISH,
        role_denied=RULES,
        fill=(("kind", "fall"),),
        status=204,
        setup=store_rule,
    ),
}


def api_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /api/v1, from its OpenAPI document
    (which FastAPI builds from the routes themselves; no API route is hidden from it)."""
    app.openapi_schema = None  # rebuild from the routes as they are now
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, ops in paths.items()
        if path.startswith("/api/v1")
        for method in ops
    }


def test_every_route_has_a_matrix_entry(api: TestClient) -> None:
    routes = api_routes(api.app)
    assert routes - set(MATRIX) == set(), "add these routes to the authorization matrix"
    assert set(MATRIX) - routes == set(), "the matrix names routes that do not exist"


def test_every_protected_route_needs_credentials(api: TestClient, world: Any) -> None:
    for (method, path), spec in MATRIX.items():
        if spec == "public":
            continue
        url = path.replace("{alert_id}", "1").replace("{key_id}", "1").replace("{task_id}", "1")
        for name in ("place_id", "site_id", "resident_id", "device_id", "gateway_id", "kind"):
            url = url.replace("{" + name + "}", "x")
        r = api.request(method, url, json={} if method == "POST" else None)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["error"]["code"] == "unauthenticated"
        bad = api.request(method, url, headers={"Authorization": "Bearer nonsense"})
        assert bad.status_code == 401, (method, path)


CASES = [
    (method, path, role)
    for (method, path), spec in MATRIX.items()
    if isinstance(spec, Spec)
    for role in ROLES
]


def _target(
    world: Any, spec: Spec, role: str, which: str, headers: dict[str, str], api: TestClient
) -> str | None:
    kind = spec.kind
    if spec.fresh is not None:
        return spec.fresh(world, OWN_ALERT_SITE[role] if which == "own" else "h2")
    if kind == "alert" and spec.fresh_alert:
        if which == "own":
            assign = world["resp1"] if role == "responder" else None
            return str(world.new_alert(OWN_ALERT_SITE[role], assign=assign))
        return str(world.new_alert("h2", assign=world["resp2"]))
    if kind == "alert":
        key = OWN[role]["alert"] if which == "own" else OTHER["alert"]
        return str(world.alerts[key])
    if kind == "task":
        if which == "other":
            return str(world.new_task("h2", world["resp2"]))
        task_id = world.new_task("h1", world["resp1"])
        for step in spec.task_steps if role == "responder" else ():
            r = api.post(f"/api/v1/tasks/{task_id}/{step}", headers=headers)
            assert r.status_code == 200, (step, r.text)
        return str(task_id)
    if kind == "api_key":
        owner = headers if which == "own" else None
        return None if owner is None else ""
    if kind in ("self", "body") or kind.startswith("list:"):
        return None
    return world[OWN[role][kind] if which == "own" else OTHER[kind]]


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=lambda v: str(v))
def test_matrix(
    api: TestClient,
    world: Any,
    tokens: dict[str, dict[str, str]],
    method: str,
    path: str,
    role: str,
) -> None:
    spec = MATRIX[(method, path)]
    assert isinstance(spec, Spec)
    h = tokens[role]
    if spec.kind == "api_key":
        return _api_key_case(api, tokens, role)
    if spec.kind.startswith("list:"):
        return _list_case(api, world, spec, path, role, h)
    for which in ("own", "other"):
        if spec.kind == "self" and which == "other":
            continue
        obj = _target(world, spec, role, which, h, api)
        url = path
        for name, value in spec.fill:
            url = url.replace("{" + name + "}", value)
        if spec.setup is not None and obj is not None and which == "own":
            spec.setup(world, role, obj)
        params: dict[str, str] = {}
        if obj is not None:
            if spec.query:
                params[spec.query] = obj
            else:
                url = url[: url.index("{")] + obj + url[url.index("}") + 1 :]
        body = spec.body(world, role, which) if spec.body else None
        r = api.request(method, url, params=params, json=body, headers=h)
        if role in spec.role_denied:
            expected = 403
        elif which == "other":
            expected = 404
        elif role in spec.ok:
            expected = spec.status
        else:
            expected = spec.own_denied
        assert r.status_code == expected, (which, r.status_code, r.text[:300])
        if expected == 404:
            missing = url.replace(obj or "", "zz-no-such-id") if obj and not spec.query else None
            if spec.kind in ("alert", "task"):
                missing = url.replace(obj or "", str(10**12))
            if missing:
                r2 = api.request(method, missing, params=params, json=body, headers=h)
                assert r2.status_code == 404
                assert r2.json()["error"]["code"] == r.json()["error"]["code"] == "not_found"
            elif spec.query:
                r2 = api.request(
                    method, url, params={spec.query: "zz-no-such-id"}, json=body, headers=h
                )
                assert (r2.status_code, r2.json()) == (r.status_code, r.json())


def _list_case(
    api: TestClient, world: Any, spec: Spec, path: str, role: str, h: dict[str, str]
) -> None:
    kind = spec.kind.split(":", 1)[1]
    r = api.get(path, headers=h, params={"limit": 500} if "family" not in path else None)
    if role in spec.role_denied:
        assert r.status_code == 403, r.text
        return
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["items"] if isinstance(body, dict) else body
    ids = {str(i["id"]) for i in items}
    own_key, other_key = OWN[role][kind], OTHER[kind]
    resolve: Callable[[str], str] = (
        (lambda k: str(world.alerts[k])) if kind == "alert" else (lambda k: world[k])
    )
    assert resolve(other_key) not in ids, "leak: another scope's object is listed"
    if role in spec.ok and role not in spec.own_absent:
        assert resolve(own_key) in ids, "own object missing from the list"
    if spec.detail:
        for item_id in ids:
            d = api.get(spec.detail.format(item_id), headers=h)
            assert d.status_code == 200, ("listed but not readable", item_id, d.status_code)


def _api_key_case(api: TestClient, tokens: dict[str, dict[str, str]], role: str) -> None:
    h = tokens[role]
    mine = api.post(
        "/api/v1/auth/api-keys", json={"name": "m", "scopes": ["alert.read"]}, headers=h
    ).json()["id"]
    other_role = "admin" if role != "admin" else "staff"
    theirs = api.post(
        "/api/v1/auth/api-keys",
        json={"name": "t", "scopes": ["alert.read"]},
        headers=tokens[other_role],
    ).json()["id"]
    assert api.delete(f"/api/v1/auth/api-keys/{theirs}", headers=h).status_code == 404
    missing = api.delete("/api/v1/auth/api-keys/999999999", headers=h)
    assert missing.status_code == 404
    assert api.delete(f"/api/v1/auth/api-keys/{mine}", headers=h).status_code == 204
