"""The items an ingest worker stores and hands off: light twins of the contract's envelope.

The contract's :class:`~carecircle.common.contract.Envelope` is a pydantic model; building
one (and its payload) per reading cost an ingest worker more CPU than decoding the JSON.
So the worker's hot path works on :class:`Item`, a frozen msgspec struct with the same
fields and values (``payload`` is the struct the decoder made from the JSON), and hands
those to the alert engine.  Both types satisfy :class:`EnvelopeView`, the read-only
surface that consumers (the alert engine, its detectors, other hand-off handlers) are
written against, so tests and tools may still hand them envelopes.

:meth:`Item.of` and :meth:`Item.to_envelope` convert losslessly in both directions
(``tests/platform/test_ingest_decode.py`` checks it for everything the decoder accepts).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Protocol

import msgspec

from carecircle.common.contract import Code, Envelope, Kind
from carecircle.common.contract.envelope import AttrValue, Payload

AttrKey = Annotated[str, msgspec.Meta(max_length=64)]


class PayloadView(Protocol):
    """What was measured, as :class:`Payload` and :class:`ItemPayload` both show it."""

    @property
    def code(self) -> Code: ...
    @property
    def value(self) -> float | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def attrs(self) -> Mapping[str, AttrValue]: ...


class EnvelopeView(Protocol):
    """The read-only fields of an envelope (:class:`Envelope` and :class:`Item`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def gw(self) -> str: ...
    @property
    def dev(self) -> str: ...
    @property
    def res(self) -> str | None: ...
    @property
    def site(self) -> str: ...
    @property
    def room(self) -> str | None: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def gw_ts(self) -> datetime: ...
    @property
    def payload(self) -> PayloadView: ...


class ItemPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """An envelope's payload as the decoder reads it from the JSON (and hands it on)."""

    code: Code
    value: float | None = None
    unit: str | None = None
    attrs: Annotated[dict[AttrKey, AttrValue], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=dict
    )


class Item(msgspec.Struct, frozen=True, gc=False):
    """One validated envelope (schema version 1), without pydantic's per-object cost."""

    id: uuid.UUID
    kind: Kind
    gw: str
    dev: str
    res: str | None
    site: str
    room: str | None
    ts: datetime
    gw_ts: datetime
    payload: ItemPayload

    @classmethod
    def of(cls, env: Envelope) -> Item:
        p = env.payload
        return cls(
            env.id,
            env.kind,
            env.gw,
            env.dev,
            env.res,
            env.site,
            env.room,
            env.ts,
            env.gw_ts,
            ItemPayload(p.code, p.value, p.unit, dict(p.attrs)),
        )

    def to_envelope(self) -> Envelope:
        """The equal :class:`Envelope`, built without validating again (``self`` is valid)."""
        p = self.payload
        return Envelope.model_construct(
            v=1,
            id=self.id,
            kind=self.kind,
            gw=self.gw,
            dev=self.dev,
            res=self.res,
            site=self.site,
            room=self.room,
            ts=self.ts,
            gw_ts=self.gw_ts,
            payload=Payload.model_construct(
                code=p.code, value=p.value, unit=p.unit, attrs=dict(p.attrs)
            ),
        )
