"""Sign-in (OAuth2 password flow), token refresh, sign-out, the caller, API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.errors import InvalidInput, RateLimited, Unauthenticated
from carecircle.platform.api.models import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    MeOut,
    RefreshIn,
    TokenOut,
)
from carecircle.platform.auth import users
from carecircle.platform.auth.policy import ROLE_ACTIONS, Action, expand_scopes
from carecircle.platform.auth.service import LoginRefused, Session

router = APIRouter(tags=["auth"])


def _token(s: Session) -> TokenOut:
    return TokenOut(
        access_token=s.access_token, expires_in=s.expires_in, refresh_token=s.refresh_token
    )


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/auth/token", response_model=TokenOut, responses={429: {"description": "slow down"}})
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    st: StateDep,
    conn: ConnDep,
) -> TokenOut:
    """Sign in with username and password; returns an access and a refresh token."""
    try:
        return _token(st.auth.login(conn, form.username, form.password, client_of(request)))
    except LoginRefused as err:
        if err.retry_after_s is not None:
            raise RateLimited(str(err), err.retry_after_s) from err
        raise Unauthenticated(str(err)) from err


@router.post("/auth/refresh", response_model=TokenOut)
def refresh(body: RefreshIn, st: StateDep, conn: ConnDep) -> TokenOut:
    """Exchange a refresh token for new tokens; a reused refresh token revokes the sign-in."""
    try:
        return _token(st.auth.refresh(conn, body.refresh_token))
    except LoginRefused as err:
        raise Unauthenticated(str(err)) from err


@router.post("/auth/logout", status_code=204)
def logout(body: RefreshIn, st: StateDep, conn: ConnDep) -> Response:
    """Revoke a refresh token and every token rotated from the same sign-in."""
    st.auth.logout(conn, body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(p: PrincipalDep, conn: ConnDep) -> MeOut:
    user = users.by_id(conn, p.user_id)
    assert user is not None
    return MeOut(
        id=user.id,
        username=user.username,
        role=user.role.value,
        display_name=user.display_name,
        locale=user.locale,
        place_id=user.place_id,
        site_id=user.site_id,
        responder_id=user.responder_id,
        family_member_id=user.family_member_id,
        actions=sorted(a.value for a in ROLE_ACTIONS[p.role] if p.allowed(a)),
    )


@router.get("/auth/api-keys", response_model=list[ApiKeyOut])
def list_keys(p: PrincipalDep, conn: ConnDep) -> list[ApiKeyOut]:
    """The caller's API keys (never the keys themselves)."""
    return [ApiKeyOut.model_validate(r) for r in users.list_api_keys(conn, p.user_id)]


@router.post("/auth/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_key(body: ApiKeyIn, p: PrincipalDep, conn: ConnDep) -> ApiKeyCreated:
    """Create an API key acting as the caller, limited to ``scopes``; shown once."""
    if p.key_actions is not None:
        raise InvalidInput("an API key cannot create API keys; sign in as the user")
    try:
        actions = set(expand_scopes(body.scopes))
    except ValueError as err:
        raise InvalidInput(f"unknown scope: {err}") from err
    beyond = sorted(a.value for a in actions if not p.allowed(Action(a)))
    if beyond:
        raise InvalidInput(f"your role cannot grant: {', '.join(beyond)}")
    row, key = users.create_api_key(conn, p.user_id, body.name, body.scopes, body.expires_at)
    return ApiKeyCreated.model_validate({**row, "key": key})


@router.delete("/auth/api-keys/{key_id}", status_code=204)
def revoke_key(key_id: int, p: PrincipalDep, st: StateDep, conn: ConnDep) -> Response:
    users.revoke_api_key(conn, p.user_id, key_id, st.clock.now())
    return Response(status_code=204)
