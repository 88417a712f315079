"""MQTT connection helpers shared by gateway, platform and simulator (paho-mqtt 2.x, MQTT 5)."""

from __future__ import annotations

import logging
import ssl
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import AnyUrl

from carecircle.common.errors import BrokerUnavailable, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: AnyUrl | str) -> BrokerAddress:
        parsed = AnyUrl(str(url)) if isinstance(url, str) else url
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.host:
            raise ConfigError(f"MQTT URL must look like mqtt://user:pass@host:1883, got {url!s}")
        tls = parsed.scheme == "mqtts"
        return cls(
            host=parsed.host,
            port=parsed.port or (8883 if tls else 1883),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            tls=tls,
        )

    def __str__(self) -> str:  # never shows the password
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


@dataclass
class MqttConnection:
    """A configured MQTT 5 client and how to connect it."""

    client: mqtt.Client
    address: BrokerAddress
    clean_start: bool
    properties: Properties | None

    def connect(self, keepalive: int = 30) -> None:
        """Connect (blocking for the TCP part), translating socket errors."""
        try:
            self.client.connect(
                self.address.host,
                self.address.port,
                keepalive=keepalive,
                clean_start=self.clean_start,
                properties=self.properties,
            )
        except (OSError, ValueError) as err:
            raise BrokerUnavailable(
                f"cannot connect to MQTT broker at {self.address}: {err}"
            ) from err


def new_connection(
    address: BrokerAddress,
    client_id: str | None = None,
    *,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    ca_file: str | None = None,
) -> MqttConnection:
    """An MQTT 5 paho client configured for ``address`` (not yet connected).

    A persistent session (``clean_start=False`` with ``session_expiry_s > 0``) makes
    the broker keep QoS 1 messages for the client while it is away.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"cc-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.enable_logger(logging.getLogger("paho"))
    props: Properties | None = None
    if session_expiry_s:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry_s
    return MqttConnection(client, address, clean_start, props)
