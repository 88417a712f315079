"""The API with ``pii_encryption`` on (privacy phase 2, docs/privacy.md): an address
provisioned through the API is stored sealed only, and every read path opens it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carecircle.common.clock import ManualClock
from carecircle.platform.api.app import create_app
from carecircle.platform.privacy.crypto import new_key
from carecircle.platform.settings import PlatformSettings

H = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def sealed_api(database_url: str, clock: ManualClock, world: Any) -> Iterator[TestClient]:
    settings = PlatformSettings(
        database_url=database_url,
        jwt_secret="",
        demo_mode=True,
        login_burst=1000,
        api_pool_size=2,
        pii_encryption=True,
        pii_keys=f"k1:{new_key()}",
        pii_index_key=new_key(),
    )  # type: ignore[arg-type]
    with TestClient(create_app(settings, clock)) as client:
        yield client


def test_an_address_created_through_the_api_is_stored_sealed_only(
    sealed_api: TestClient, world: Any, tokens: H
) -> None:
    site = f"hs{uuid.uuid4().hex[:6]}"
    address = f"88 Osmanthus Road, flat {uuid.uuid4().hex[:4]}"
    body = {
        "id": site,
        "kind": "household",
        "place_id": world["v1"],
        "name": "Sealed home",
        "address": address,
        "lat": 30.1,
        "lon": 120.1,
    }
    try:
        created = sealed_api.post("/api/v1/sites", json=body, headers=tokens["admin"])
        assert created.status_code == 201, created.text
        assert created.json()["address"] == address
        raw = world.conn.execute(
            "SELECT address, address_enc FROM sites WHERE id = %s", (site,)
        ).fetchone()
        assert raw is not None and raw[0] is None and raw[1] is not None
        assert address.encode() not in bytes(raw[1])
        one = sealed_api.get(f"/api/v1/sites/{site}", headers=tokens["admin"]).json()
        assert one["address"] == address and "address_enc" not in one
        listed = sealed_api.get("/api/v1/households?limit=500", headers=tokens["admin"]).json()
        assert {s["id"]: s["address"] for s in listed["items"]}[site] == address
        # a site written before encryption was turned on still reads from its plaintext
        h1 = sealed_api.get(f"/api/v1/sites/{world['h1']}", headers=tokens["admin"]).json()
        assert h1["address"] == "1 Lane"
    finally:
        world.conn.execute("DELETE FROM audit_log WHERE object_id = %s", (site,))
        world.conn.execute("DELETE FROM sites WHERE id = %s", (site,))
