"""The CareCircle exception hierarchy.

Every error CareCircle raises on purpose derives from :class:`CareCircleError`.
Library errors (psycopg, paho-mqtt, pydantic, OS errors) are translated at the
boundary where they occur, with ``raise ... from err`` so the cause is kept.

=========================  ===========================================  =========
class                      meaning                                      CLI exit
=========================  ===========================================  =========
``CareCircleError``        base class                                   1
``ConfigError``            bad settings: fix a flag, variable or file   2
``ContractError``          a message breaks the wire contract           1
``StoreError``             the database refused an operation            1
``StoreUnavailable``       the database cannot be reached               3
``BrokerUnavailable``      the MQTT broker cannot be reached            3
``NotFound``               an object does not exist (or is not yours)   1
``PermissionDenied``       the caller may not do this                   1
``Conflict``               the object is in a state that forbids this   1
=========================  ===========================================  =========
"""

from __future__ import annotations


class CareCircleError(Exception):
    """Base of every error CareCircle raises deliberately."""

    exit_code: int = 1


class ConfigError(CareCircleError):
    """Settings are missing, malformed or contradictory."""

    exit_code = 2


class ContractError(CareCircleError):
    """A message does not follow the wire contract (docs/contract.md)."""


class StoreError(CareCircleError):
    """The database refused an operation."""


class StoreUnavailable(StoreError):
    """The database cannot be reached."""

    exit_code = 3


class BrokerUnavailable(CareCircleError):
    """The MQTT broker cannot be reached."""

    exit_code = 3


class NotFound(CareCircleError):
    """The object does not exist, or the caller may not know that it exists."""


class PermissionDenied(CareCircleError):
    """The caller is not allowed to do this."""


class Conflict(CareCircleError):
    """The object's current state forbids the requested change."""
