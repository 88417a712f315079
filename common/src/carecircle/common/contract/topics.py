"""The MQTT topic scheme (contract version v1).

=============================================  ===========  ======================================
topic                                          direction    payload
=============================================  ===========  ======================================
``{root}/v1/gw/{gw}/up/batch``                 gw → plat    :class:`Batch` of routine readings
``{root}/v1/gw/{gw}/up/alarm``                 gw → plat    :class:`Batch` of urgent items
``{root}/v1/gw/{gw}/up/status``                gw → plat    :class:`Batch` of status/heartbeat
``{root}/v1/gw/{gw}/state``                    gw → plat    retained ``{"state":"online"}``;
                                                            the will sets ``offline``
``{root}/v1/gw/{gw}/deadletter``               gw → plat    what the gateway could not read
``{root}/v1/gw/{gw}/config``                   plat → gw    retained :class:`GatewayConfig`
``{root}/v1/gw/{gw}/ingest``                   plat → gw    ``{"state":"online"}`` from an ingest
                                                            worker that is subscribed: the
                                                            gateway may send (never retained)
``{root}/v1/gw/{gw}/cmd``                      plat → gw    reserved for commands (unused)
``{root}/v1/responder/{responder}/task``       plat → app   task offers and updates
``{root}/v1/platform/alerts``                  plat → UI    alert changes
=============================================  ===========  ======================================

``root`` defaults to ``cc`` and is a setting, so several deployments (or test
runs) can share one broker.  Native device topics (zigbee2mqtt, Home Assistant,
wearables) stay on the gateway's local broker and are described in docs/contract.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

VERSION = "v1"


class Uplink(StrEnum):
    BATCH = "batch"
    ALARM = "alarm"
    STATUS = "status"


@dataclass(frozen=True)
class Topics:
    root: str = "cc"

    @property
    def base(self) -> str:
        return f"{self.root}/{VERSION}"

    def uplink(self, gateway_id: str, channel: Uplink) -> str:
        return f"{self.base}/gw/{gateway_id}/up/{channel.value}"

    def uplink_filter(self, gateway_id: str = "+") -> str:
        return f"{self.base}/gw/{gateway_id}/up/+"

    def shared_uplink_filter(self, group: str = "ingest") -> str:
        """MQTT 5 shared subscription: the workers of ``group`` split the uplink load."""
        return f"$share/{group}/{self.uplink_filter()}"

    def gateway_state(self, gateway_id: str) -> str:
        return f"{self.base}/gw/{gateway_id}/state"

    def gateway_deadletter(self, gateway_id: str) -> str:
        return f"{self.base}/gw/{gateway_id}/deadletter"

    def gateway_config(self, gateway_id: str) -> str:
        return f"{self.base}/gw/{gateway_id}/config"

    def gateway_ingest(self, gateway_id: str) -> str:
        """Where an ingest worker tells a gateway that it is subscribed (not retained)."""
        return f"{self.base}/gw/{gateway_id}/ingest"

    def gateway_state_filter(self) -> str:
        return f"{self.base}/gw/+/state"

    def parse_gateway_state(self, topic: str) -> str | None:
        """The gateway id of a ``…/gw/{gw}/state`` topic of this root, else ``None``."""
        parts = topic.split("/")
        if (
            len(parts) == 5
            and parts[0] == self.root
            and parts[1] == VERSION
            and parts[2] == "gw"
            and parts[4] == "state"
            and parts[3] not in ("", "+", "#")
        ):
            return parts[3]
        return None

    def gateway_command(self, gateway_id: str) -> str:
        return f"{self.base}/gw/{gateway_id}/cmd"

    def responder_tasks(self, responder_id: str) -> str:
        return f"{self.base}/responder/{responder_id}/task"

    def alerts(self) -> str:
        return f"{self.base}/platform/alerts"

    def parse_uplink(self, topic: str) -> tuple[str, Uplink] | None:
        """``(gateway_id, channel)`` for an uplink topic of this root, else ``None``."""
        parts = topic.split("/")
        if (
            len(parts) != 6
            or parts[0] != self.root
            or parts[1] != VERSION
            or parts[2] != "gw"
            or parts[4] != "up"
        ):
            return None
        try:
            return parts[3], Uplink(parts[5])
        except ValueError:
            return None
