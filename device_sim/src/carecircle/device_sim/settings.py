"""Settings of the simulator (``[sim]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from carecircle.common.settings import CareCircleSettings, MqttUrl


class SimSettings(CareCircleSettings):
    section: ClassVar[str] = "sim"

    #: The broker the simulated devices publish to (the gateways' local broker).
    local_mqtt_url: MqttUrl = Field(default="mqtt://127.0.0.1:1883")  # type: ignore[assignment]
    seed: int = 1

    # -- device simulator (issue 3): native topic bases, pace and incident rates --------
    #: Base topics of the native formats; ``{site}`` and ``{gw}`` are replaced per site,
    #: e.g. ``sim/{gw}/zigbee2mqtt`` gives every simulated gateway its own bridge.
    zigbee2mqtt_base: str = Field(default="zigbee2mqtt", min_length=1)
    careband_base: str = Field(default="careband", min_length=1)
    bedsensor_base: str = Field(default="bedsensor", min_length=1)
    homeassistant_base: str = Field(default="homeassistant", min_length=1)
    #: Simulated seconds per real second in live mode (1 = real time).
    speed: float = Field(default=1.0, gt=0, le=100_000)
    #: Multiplies every random incident rate (0 = only incidents asked for by scenario).
    incident_scale: float = Field(default=1.0, ge=0, le=1000)
