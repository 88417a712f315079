"""Settings of the platform deployable (``[platform]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from pathlib import Path
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

    # --- ml: per-resident anomaly models (carecircle.ml; docs/ml.md) ---
    #: where versioned model files live; only files registered in ml_models are loaded
    ml_registry_dir: Path = Path("var/ml-registry")
    #: local time zone of the residents' routines (hour of day, weekday/weekend)
    ml_timezone: str = "Asia/Shanghai"
    ml_window_days: PositiveInt = 28
    ml_holdout_days: PositiveInt = 2
    ml_seed: int = 20261129
    #: nightly training at this local hour; hourly scoring at this minute past the hour
    ml_train_hour: int = Field(default=2, ge=0, le=23)
    ml_score_minute: int = Field(default=5, ge=0, le=59)
