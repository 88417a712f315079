"""Settings of the platform deployable (``[platform]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from carecircle.common.settings import CareCircleSettings, MqttUrl, PostgresUrl


class PlatformSettings(CareCircleSettings):
    section: ClassVar[str] = "platform"

    database_url: PostgresUrl = Field(
        default="postgresql://postgres@127.0.0.1:5432/carecircle",  # type: ignore[assignment]
        description="PostgreSQL/TimescaleDB connection URL",
    )
    db_connect_timeout_s: PositiveInt = 5
    mqtt_url: MqttUrl = Field(
        default="mqtt://127.0.0.1:1883",  # type: ignore[assignment]
        description="platform MQTT broker URL (mqtt:// or mqtts://)",
    )
    #: ``auto`` uses TimescaleDB when the server offers the extension.
    timeseries_backend: Literal["auto", "timescale", "plain"] = "auto"
    raw_retention_days: PositiveInt = 90
    event_retention_days: PositiveInt = 730
    #: Plain PostgreSQL: how many days of partitions to prepare ahead.
    partition_days_ahead: PositiveInt = 7
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)

    # -- ingest, registry and rollups (ingest engineer) ---------------------------------
    #: Stable per worker: with the host name it makes the MQTT client id, so a restarted
    #: worker gets its unacknowledged messages back from its persistent session.
    ingest_worker_id: str = Field(default="1", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    ingest_group: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    #: Unacknowledged messages the broker may send one worker (MQTT 5 Receive Maximum).
    ingest_receive_maximum: int = Field(default=256, ge=1, le=65535)
    ingest_session_expiry_s: PositiveInt = 7 * 24 * 3600
    ingest_batch_max_messages: PositiveInt = 200
    ingest_batch_linger_ms: int = Field(default=20, ge=0, le=10_000)
    ingest_retry_max_s: PositiveInt = 15
    #: Call hand-off handlers before acknowledging (at-least-once) instead of on a thread.
    ingest_inline_handoff: bool = False
    #: Prometheus /metrics port of `platform ingest`; 0 = off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    rollup_1m_retention_days: PositiveInt = 400
    rollup_1h_retention_days: PositiveInt = 3650
    rollup_interval_s: PositiveInt = 60
    maintain_interval_s: PositiveInt = 3600
