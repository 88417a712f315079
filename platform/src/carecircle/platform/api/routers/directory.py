"""Places, sites (households and facilities), devices, gateways and responders."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from carecircle.platform import registry
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.models import (
    DeviceIn,
    DeviceOut,
    GatewayCreated,
    GatewayCredentials,
    GatewayIn,
    GatewayOut,
    Level,
    PlaceOut,
    ResponderOut,
    RetiredOut,
    SiteIn,
    SiteKind,
    SiteOut,
)
from carecircle.platform.api.paging import CursorQ, LimitQ, Page
from carecircle.platform.api.params import IdPath, IdQ
from carecircle.platform.api.repo import audit, directory
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, require, require_role

router = APIRouter()

Health = Literal["online", "offline", "unknown"]

FACILITY_KINDS = ["nursing_home", "day_care", "community_station", "meal_point"]
RetiredQ = Annotated[bool, Query(description="also list devices or gateways taken out of service")]
ReasonQ = Annotated[str, Query(max_length=200, description="why, for the audit log")]


@router.get("/places", response_model=Page[PlaceOut], tags=["places"])
def list_places(
    p: PrincipalDep,
    conn: ConnDep,
    level: Level | None = None,
    parent_id: IdQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[PlaceOut]:
    """Places (prefecture → county → township → village) in the caller's scope."""
    require_role(p, Action.PLACE_READ)
    rows, nxt = directory.list_places(
        conn, p, level=level, parent_id=parent_id, limit=limit, cursor=cursor
    )
    return Page[PlaceOut](items=[PlaceOut.model_validate(r) for r in rows], next=nxt)


@router.get("/places/{place_id}", response_model=PlaceOut, tags=["places"])
def get_place(place_id: IdPath, p: PrincipalDep, conn: ConnDep) -> PlaceOut:
    require_role(p, Action.PLACE_READ)
    require(p, Action.PLACE_READ, scope.load(conn, "place", place_id), "place")
    return PlaceOut.model_validate(directory.one(conn, directory.PLACE_SELECT, "id", place_id))


def _sites(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    kinds: list[str] | None,
    place_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[SiteOut]:
    require_role(p, Action.SITE_READ)
    rows, nxt = directory.list_sites(
        conn, p, kinds=kinds, place_id=place_id, limit=limit, cursor=cursor, cipher=st.pii
    )
    return Page[SiteOut](items=[SiteOut.model_validate(r) for r in rows], next=nxt)


@router.get("/sites", response_model=Page[SiteOut], tags=["sites"])
def list_sites(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    kind: Annotated[list[SiteKind] | None, Query()] = None,
    place_id: IdQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[SiteOut]:
    """Households and facilities in scope; filter by kind and by place (any level)."""
    return _sites(p, st, conn, list(kind) if kind else None, place_id, limit, cursor)


@router.get("/households", response_model=Page[SiteOut], tags=["sites"])
def list_households(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    place_id: IdQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[SiteOut]:
    return _sites(p, st, conn, ["household"], place_id, limit, cursor)


@router.get("/facilities", response_model=Page[SiteOut], tags=["sites"])
def list_facilities(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    place_id: IdQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[SiteOut]:
    return _sites(p, st, conn, FACILITY_KINDS, place_id, limit, cursor)


@router.get("/sites/{site_id}", response_model=SiteOut, tags=["sites"])
def get_site(site_id: IdPath, p: PrincipalDep, st: StateDep, conn: ConnDep) -> SiteOut:
    require_role(p, Action.SITE_READ)
    require(p, Action.SITE_READ, scope.load(conn, "site", site_id), "site")
    row = directory.one(conn, directory.SITE_SELECT, "id", site_id)
    return SiteOut.model_validate(directory.open_sites([row], st.pii)[0])


@router.post("/sites", response_model=SiteOut, status_code=201, tags=["sites"])
def create_site(body: SiteIn, p: PrincipalDep, st: StateDep, conn: ConnDep) -> SiteOut:
    """Provision a household or facility under a place in the administrator's scope."""
    require_role(p, Action.SITE_WRITE)
    require(p, Action.SITE_WRITE, scope.load(conn, "place", body.place_id), "place")
    row = directory.create_site(conn, body.model_dump(), seal=st.seal)
    audit(conn, p.actor, "site.create", "site", body.id, {"place_id": body.place_id})
    return SiteOut.model_validate(row)


@router.get("/devices", response_model=Page[DeviceOut], tags=["devices"])
def list_devices(
    p: PrincipalDep,
    conn: ConnDep,
    site_id: IdQ = None,
    resident_id: IdQ = None,
    status: Health | None = None,
    include_retired: RetiredQ = False,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[DeviceOut]:
    require_role(p, Action.DEVICE_READ)
    rows, nxt = directory.list_devices(
        conn,
        p,
        site_id=site_id,
        resident_id=resident_id,
        status=status,
        include_retired=include_retired,
        limit=limit,
        cursor=cursor,
    )
    return Page[DeviceOut](items=[DeviceOut.model_validate(r) for r in rows], next=nxt)


@router.get("/devices/{device_id}", response_model=DeviceOut, tags=["devices"])
def get_device(device_id: IdPath, p: PrincipalDep, conn: ConnDep) -> DeviceOut:
    require_role(p, Action.DEVICE_READ)
    require(p, Action.DEVICE_READ, scope.load(conn, "device", device_id), "device")
    return DeviceOut.model_validate(directory.one(conn, directory.DEVICE_SELECT, "id", device_id))


@router.post(
    "/gateways/{gateway_id}/devices", response_model=DeviceOut, status_code=201, tags=["devices"]
)
def create_device(gateway_id: IdPath, body: DeviceIn, p: PrincipalDep, conn: ConnDep) -> DeviceOut:
    """Bind a device to a gateway; the gateway's config version goes up."""
    require_role(p, Action.DEVICE_WRITE)
    require(p, Action.GATEWAY_WRITE, scope.load(conn, "gateway", gateway_id), "gateway")
    row = directory.create_device(conn, gateway_id, body.model_dump())
    audit(conn, p.actor, "device.create", "device", body.id, {"gateway_id": gateway_id})
    return DeviceOut.model_validate(row)


@router.delete("/devices/{device_id}", response_model=RetiredOut, tags=["devices"])
def retire_device(
    device_id: IdPath, p: PrincipalDep, st: StateDep, conn: ConnDep, reason: ReasonQ = ""
) -> RetiredOut:
    """Take a device out of service: its history stays, it leaves its gateway's
    configuration and the device checks, its offline/battery alerts are cancelled.
    Retiring it again changes nothing; provisioning it again brings it back."""
    require_role(p, Action.DEVICE_WRITE)
    require(p, Action.DEVICE_WRITE, scope.load(conn, "device", device_id), "device")
    report = registry.retire_device(
        conn, device_id, actor=p.actor, at=st.clock.now(), reason=reason
    )
    return RetiredOut.model_validate(report)


@router.get("/gateways", response_model=Page[GatewayOut], tags=["gateways"])
def list_gateways(
    p: PrincipalDep,
    conn: ConnDep,
    site_id: IdQ = None,
    status: Health | None = None,
    include_retired: RetiredQ = False,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[GatewayOut]:
    require_role(p, Action.GATEWAY_READ)
    rows, nxt = directory.list_gateways(
        conn,
        p,
        site_id=site_id,
        status=status,
        include_retired=include_retired,
        limit=limit,
        cursor=cursor,
    )
    return Page[GatewayOut](items=[GatewayOut.model_validate(r) for r in rows], next=nxt)


@router.get("/gateways/{gateway_id}", response_model=GatewayOut, tags=["gateways"])
def get_gateway(gateway_id: IdPath, p: PrincipalDep, conn: ConnDep) -> GatewayOut:
    require_role(p, Action.GATEWAY_READ)
    require(p, Action.GATEWAY_READ, scope.load(conn, "gateway", gateway_id), "gateway")
    return GatewayOut.model_validate(
        directory.one(conn, directory.GATEWAY_SELECT, "id", gateway_id)
    )


@router.post("/gateways", response_model=GatewayCreated, status_code=201, tags=["gateways"])
def create_gateway(body: GatewayIn, p: PrincipalDep, conn: ConnDep) -> GatewayCreated:
    """Provision a gateway at a site; returns its broker secret once (stored hashed)."""
    require_role(p, Action.GATEWAY_WRITE)
    require(p, Action.SITE_WRITE, scope.load(conn, "site", body.site_id), "site")
    row, secret = directory.create_gateway(conn, body.id, body.site_id, body.software)
    audit(conn, p.actor, "gateway.create", "gateway", body.id, {"site_id": body.site_id})
    return GatewayCreated.model_validate({**row, "secret": secret})


@router.post(
    "/gateways/{gateway_id}/credentials", response_model=GatewayCredentials, tags=["gateways"]
)
def rotate_credentials(gateway_id: IdPath, p: PrincipalDep, conn: ConnDep) -> GatewayCredentials:
    """Issue a new broker secret for the gateway (the old one stops working)."""
    require_role(p, Action.GATEWAY_WRITE)
    require(p, Action.GATEWAY_WRITE, scope.load(conn, "gateway", gateway_id), "gateway")
    secret = directory.rotate_gateway_secret(conn, gateway_id)
    audit(conn, p.actor, "gateway.rotate_secret", "gateway", gateway_id, {})
    return GatewayCredentials(gateway_id=gateway_id, secret=secret)


@router.delete("/gateways/{gateway_id}", response_model=RetiredOut, tags=["gateways"])
def retire_gateway(
    gateway_id: IdPath, p: PrincipalDep, st: StateDep, conn: ConnDep, reason: ReasonQ = ""
) -> RetiredOut:
    """Take a gateway and all its devices out of service and revoke its broker secret;
    its retained configuration is deleted by the scheduler's next config push."""
    require_role(p, Action.GATEWAY_WRITE)
    require(p, Action.GATEWAY_WRITE, scope.load(conn, "gateway", gateway_id), "gateway")
    report = registry.retire_gateway(
        conn, gateway_id, actor=p.actor, at=st.clock.now(), reason=reason
    )
    return RetiredOut.model_validate(report)


@router.get("/responders", response_model=Page[ResponderOut], tags=["responders"])
def list_responders(
    p: PrincipalDep,
    conn: ConnDep,
    availability: Literal["on_duty", "off_duty", "busy"] | None = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[ResponderOut]:
    """Volunteers and care workers in scope (for the map and for dispatching by hand)."""
    require_role(p, Action.RESPONDER_READ)
    rows, nxt = directory.list_responders(
        conn, p, availability=availability, limit=limit, cursor=cursor
    )
    return Page[ResponderOut](items=[ResponderOut.model_validate(r) for r in rows], next=nxt)
