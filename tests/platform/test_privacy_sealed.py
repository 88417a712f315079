"""Privacy phase 2 (docs/privacy.md): phone numbers and addresses stored sealed only.

Every test reads the raw database — every text, JSON and binary column of every table —
and finds none of the plaintext, then shows the values still work where they are needed:
the blind index finds a phone, the SMS outbox delivers to the right number (opened only
at delivery), the export opens the address."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from carecircle.common.contract import (
    FamilyLinkSpec,
    FamilyMemberSpec,
    PlaceSpec,
    Provisioning,
    ResidentSpec,
    ResponderSpec,
    SiteSpec,
)
from carecircle.platform.dispatch import registry as dispatch_registry
from carecircle.platform.dispatch.notify.base import DeliveryResult, Notification
from carecircle.platform.dispatch.notify.outbox import deliver_due, enqueue
from carecircle.platform.privacy.contacts import PhoneBook, family_target, responder_target
from carecircle.platform.privacy.crypto import PiiCipher, new_key
from carecircle.platform.privacy.service import encrypt_existing, export_resident, find_by_phone
from carecircle.platform.registry import provision
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

Conn = psycopg.Connection[Any]
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
OLD_KEY, INDEX_KEY = new_key(), new_key()
CIPHER = PiiCipher.from_settings(f"k1:{OLD_KEY}", INDEX_KEY)

RESP_PHONE = "+86 138-7311-4629"
FAM_PHONE = "139 5517 8802"
ADDRESS = "17 Plum Blossom Lane, Building 3"


@pytest.fixture(scope="module")
def sealed_db(fresh_database: Callable[[], str]) -> str:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


@pytest.fixture
def db(sealed_db: str) -> Iterator[Conn]:
    with psycopg.connect(sealed_db, autocommit=True) as conn:
        yield conn


def doc(p: str, resp_phone: str = RESP_PHONE) -> Provisioning:
    places = [
        PlaceSpec(id=f"{p}pf", level="prefecture", name="P", lat=30, lon=120),
        PlaceSpec(id=f"{p}co", parent_id=f"{p}pf", level="county", name="C", lat=30, lon=120),
        PlaceSpec(id=f"{p}tw", parent_id=f"{p}co", level="township", name="T", lat=30, lon=120),
        PlaceSpec(id=f"{p}vi", parent_id=f"{p}tw", level="village", name="V", lat=30, lon=120),
    ]
    return Provisioning(
        places=places,
        sites=[
            SiteSpec(
                id=f"{p}hh",
                kind="household",
                place_id=f"{p}vi",
                name="H",
                address=ADDRESS,
                lat=30,
                lon=120,
            )
        ],
        residents=[ResidentSpec(id=f"{p}r", site_id=f"{p}hh", display_name="Elder")],
        responders=[
            ResponderSpec(
                id=f"{p}vol",
                display_name="Volunteer",
                kind="volunteer",
                place_id=f"{p}vi",
                lat=30.001,
                lon=120.001,
                covers=[f"{p}vi"],
                phone=resp_phone,
            ),
            ResponderSpec(id=f"{p}nophone", display_name="N", kind="volunteer", lat=30, lon=120),
        ],
        family_members=[
            FamilyMemberSpec(
                id=f"{p}son",
                display_name="Son",
                phone=FAM_PHONE,
                links=[FamilyLinkSpec(resident_id=f"{p}r", relationship="son")],
            )
        ],
    )


def forms(secret: str) -> set[str]:
    """The ways a value could sit in a column: as written, digits only, the last 8."""
    digits = re.sub(r"\D", "", secret)
    out = {secret}
    if len(digits) >= 8:
        out |= {digits, digits[-8:]}
    return out


def plaintext_anywhere(conn: Conn, secrets: list[str]) -> list[str]:
    """``table.column`` of every base table and text/JSON/binary column holding a form of
    one of ``secrets`` (bytea compared as bytes, so a sealed value never matches)."""
    cols = conn.execute(
        """
        SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_name = c.table_name AND t.table_schema = c.table_schema
        WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
          AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')
        """
    ).fetchall()
    found = []
    needles = sorted({f for s in secrets for f in forms(s)})
    for table, column, dtype in cols:
        col = sql.Identifier(column)
        expr = (
            sql.SQL("position(convert_to(%s, 'UTF8') in {}) > 0").format(col)
            if dtype == "bytea"
            else sql.SQL("strpos({}::text, %s) > 0").format(col)
        )
        for needle in needles:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), expr),
                (needle,),
            ).fetchone()
            if row and row[0]:
                found.append(f"{table}.{column} holds {needle!r}")
    return found


def test_provisioning_stores_phones_and_addresses_sealed_only(db: Conn) -> None:
    p = "ps1"
    first = provision(db, doc(p), CIPHER)
    assert plaintext_anywhere(db, [RESP_PHONE, FAM_PHONE, ADDRESS]) == []
    # … and a control: the same scan does find what is stored in plaintext (the name)
    assert plaintext_anywhere(db, ["Volunteer"]) == ["responders.display_name holds 'Volunteer'"]
    # still usable where needed
    assert find_by_phone(db, CIPHER, "responders", "+8613873114629") == [f"{p}vol"]
    assert find_by_phone(db, CIPHER, "family_members", "+86 139-5517-8802") == []  # no +86
    assert find_by_phone(db, CIPHER, "family_members", "13955178802") == [f"{p}son"]
    book = PhoneBook(CIPHER)
    assert book(db, responder_target(f"{p}vol")) == RESP_PHONE
    assert book(db, family_target(f"{p}son")) == FAM_PHONE
    assert book(db, responder_target(f"{p}nophone")) is None
    assert book(db, "120") == "120"  # a literal number passes through
    home = export_resident(db, f"{p}r", cipher=CIPHER)["sites"][0]
    assert home["address"] == ADDRESS
    # provisioning the same document again changes nothing (sealed tokens are kept) …
    again = provision(db, doc(p), CIPHER)
    assert first.changed["responders"] == 2 and first.changed["sites"] == 1
    assert (again.changed["responders"], again.changed["sites"]) == (0, 0)
    assert again.changed["family_members"] == 0
    # … and a new number is sealed anew
    moved = provision(db, doc(p, resp_phone="+86 137 0000 1234"), CIPHER)
    assert moved.changed["responders"] == 1
    assert book(db, responder_target(f"{p}vol")) == "+86 137 0000 1234"
    assert plaintext_anywhere(db, ["+86 137 0000 1234"]) == []


class Outgoing:
    """An SMS channel on our own Notifier interface that records what it was asked to send."""

    channel = "sms"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, notification: Notification) -> DeliveryResult:
        self.sent.append((notification.target, str(notification.payload.get("type"))))
        return DeliveryResult(True)

    def close(self) -> None:
        pass


def test_sms_reach_sealed_numbers_and_the_outbox_holds_none(db: Conn) -> None:
    p = "ps2"
    provision(db, doc(p), CIPHER)
    # dispatch sees that the numbers exist without reading them
    responders = {
        r.id: r for r in dispatch_registry.load_responders(db, [f"{p}vol", f"{p}nophone"])
    }
    assert responders[f"{p}vol"].has_phone and not responders[f"{p}nophone"].has_phone
    assert dispatch_registry.family_contacts(db, f"{p}r") == [(f"{p}son", True)]
    # what dispatch enqueues: references, not numbers
    for target in (responder_target(f"{p}vol"), family_target(f"{p}son"), "120"):
        enqueue(db, channel="sms", target=target, payload={"type": "escalation"}, now=NOW)
    assert plaintext_anywhere(db, [RESP_PHONE, FAM_PHONE]) == []
    sms = Outgoing()
    counts = deliver_due(db, {"sms": sms}, NOW, resolve=PhoneBook(CIPHER))
    assert counts["delivered"] >= 3
    assert {t for t, _ in sms.sent} >= {RESP_PHONE, FAM_PHONE, "120"}
    assert plaintext_anywhere(db, [RESP_PHONE, FAM_PHONE]) == []  # attempts hold none either
    # without the keys a sealed number cannot be opened: the SMS fails with the reason
    enqueue(db, channel="sms", target=responder_target(f"{p}vol"), payload={}, now=NOW)
    failed = deliver_due(db, {"sms": Outgoing()}, NOW, resolve=PhoneBook(None))
    assert failed["failed"] == 1
    row = db.execute(
        "SELECT last_error FROM notifications WHERE status = 'failed' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert row is not None and "CARECIRCLE_PII_KEYS" in str(row[0])


def test_encrypt_existing_drops_plaintext_phones_and_addresses_and_rotates(db: Conn) -> None:
    """Rows written before phase 2 (plaintext) are sealed and their plaintext removed."""
    p = "ps3"
    provision(db, doc(p))  # no cipher: plaintext, as before
    legacy = ["+86 135 2468 9753", "Old Mill Road 5"]
    db.execute("UPDATE responders SET phone = %s WHERE id = %s", (legacy[0], f"{p}vol"))
    db.execute("UPDATE sites SET address = %s WHERE id = %s", (legacy[1], f"{p}hh"))
    assert plaintext_anywhere(db, legacy) != []
    report = encrypt_existing(db, CIPHER, drop_plaintext=True)
    assert report.dropped["responders.phone"] >= 1 and report.dropped["sites.address"] >= 1
    assert plaintext_anywhere(db, [*legacy, RESP_PHONE, FAM_PHONE, ADDRESS]) == []
    assert PhoneBook(CIPHER)(db, responder_target(f"{p}vol")) == legacy[0]
    again = encrypt_existing(db, CIPHER, drop_plaintext=True)
    assert sum(again.sealed.values()) == sum(again.dropped.values()) == 0
    # names are not dropped (every reader still needs them): sealed, plaintext kept
    assert plaintext_anywhere(db, ["Volunteer"]) != []
    # rotation reaches values that exist only sealed
    rotated = PiiCipher.from_settings(f"k2:{new_key()},k1:{OLD_KEY}", INDEX_KEY)
    report = encrypt_existing(db, rotated)
    assert report.rotated["responders.phone"] >= 3 and report.rotated["sites.address"] >= 3
    assert PhoneBook(rotated)(db, responder_target(f"{p}vol")) == legacy[0]
    token = db.execute("SELECT phone_enc FROM responders WHERE id = %s", (f"{p}vol",)).fetchone()
    assert token is not None and bytes(token[0]).startswith(b"k2:")
    # a key nobody configured opens nothing and changes nothing
    stranger = PiiCipher.from_settings(f"k9:{new_key()}", INDEX_KEY)
    report = encrypt_existing(db, stranger)
    assert report.unreadable["responders.phone"] >= 3
    assert PhoneBook(rotated)(db, responder_target(f"{p}vol")) == legacy[0]
