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
