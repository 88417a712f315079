"""Settings of the platform deployable (``[platform]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, field_validator, model_validator

from carecircle.common.settings import CareCircleSettings, MqttUrl, PostgresUrl

#: Deprecated names of :attr:`PlatformSettings.timezone` (one per domain, before).
TIMEZONE_ALIASES = ("alerts_timezone", "dispatch_timezone", "display_timezone", "ml_timezone")


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
    #: The one local time zone of the platform's sites (IANA name): night and morning
    #: windows of alerts, shifts and coverage of dispatch, days shown to people, routines
    #: of the ml models.  ``alerts_timezone``, ``dispatch_timezone``, ``display_timezone``
    #: and ``ml_timezone`` are deprecated aliases: setting one sets this; set to
    #: different values they are refused.
    timezone: str = "Asia/Shanghai"

    # --- dispatch (responders, escalation, notifications) ---
    #: Deprecated alias of ``timezone``.
    dispatch_timezone: str = "Asia/Shanghai"
    #: JSON file with a full DispatchPolicy (per-kind and per-site rules); flags below
    #: override its basic numbers.
    dispatch_policy_file: Path | None = None
    dispatch_k: PositiveInt | None = None
    dispatch_offer_timeout_s: PositiveFloat | None = None
    dispatch_escalate_after_s: PositiveFloat | None = None
    dispatch_emergency_number: str | None = None
    #: Great-circle distance × this = distance along roads and lanes (1.3 rural, 1.2 town).
    dispatch_detour_factor: float = Field(default=1.3, ge=1.0, le=3.0)
    dispatch_poll_s: PositiveFloat = 1.0
    notify_max_attempts: PositiveInt = 5
    notify_backoff_s: PositiveFloat = 2.0
    #: Signed JSON POSTs of escalations (and emergencies when notify_emergency_via=webhook).
    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=25, ge=1, le=65535)
    notify_smtp_user: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_smtp_starttls: bool = False
    notify_email_from: str = "carecircle@localhost"
    #: Addresses told of every escalation (e.g. the township care office).
    notify_email_to: list[str] = Field(default_factory=list)
    notify_sms_url: str | None = None
    notify_sms_api_key: SecretStr | None = None
    notify_emergency_via: Literal["webhook", "sms"] = "webhook"

    # -- alerts (rules, absence checks, lifecycle; docs/alerts.md) --
    #: Deprecated alias of ``timezone``.
    alerts_timezone: str = "Asia/Shanghai"
    #: How often the scheduler runs the absence, device and gateway checks.
    alerts_absence_interval_s: PositiveInt = 60
    #: Ask the installed gates (``carecircle.alerts.gates``, e.g. the ml routine models)
    #: before opening an inactivity or missed wake-up alert; off = the rules alone.
    alerts_gates: bool = True
    #: An alert closed this many times within the window is held when it fires again.
    alerts_flap_count: PositiveInt = 3
    alerts_flap_window_s: PositiveInt = 3600
    #: How long ingest workers cache rules, residents and rooms.
    alerts_cache_s: PositiveInt = 30

    # --- security & privacy (docs/privacy.md) ---
    #: A throwaway demo or test machine: default credentials only warn, and the API
    #: accepts its built-in development JWT secret. Never in production.
    demo_mode: bool = False
    #: Field-level encryption of personal data (phase 1, off by default): when on,
    #: pii_keys and pii_index_key are required and `carecircle privacy encrypt-existing`
    #: seals names, phone numbers and addresses into the *_enc columns.
    pii_encryption: bool = False
    #: "k2:<base64>,k1:<base64>", current key first (`carecircle privacy new-key`).
    pii_keys: SecretStr | None = None
    #: Key of the HMAC blind indexes (phone, ID number lookups); never rotated casually.
    pii_index_key: SecretStr | None = None

    @model_validator(mode="after")
    def _pii_keys_when_encrypting(self) -> PlatformSettings:
        if self.pii_encryption and (self.pii_keys is None or self.pii_index_key is None):
            raise ValueError(
                "pii_encryption needs pii_keys and pii_index_key "
                "(generate them with `carecircle privacy new-key`)"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _one_timezone(cls, data: Any) -> Any:
        """One platform time zone; the four old per-domain names are aliases of it."""
        if not isinstance(data, dict):
            return data
        given = {k: data[k] for k in ("timezone", *TIMEZONE_ALIASES) if data.get(k)}
        if len(set(given.values())) > 1:
            raise ValueError(
                "the platform has one time zone: set `timezone` only "
                f"(got {', '.join(f'{k}={v}' for k, v in sorted(given.items()))})"
            )
        if given:
            tz = next(iter(given.values()))
            data = {**data, "timezone": tz, **dict.fromkeys(TIMEZONE_ALIASES, tz)}
        return data

    @field_validator("timezone", *TIMEZONE_ALIASES)
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from err
        return value

    # --- API and dashboard (carecircle.platform.api / auth / dashboard) ---
    # (demo_mode, above, also allows the built-in development JWT secret)
    #: HS256 signing secret for access tokens; required (>= 32 chars) outside demo mode.
    jwt_secret: SecretStr = Field(default=SecretStr(""), repr=False)
    access_token_minutes: PositiveInt = 15
    refresh_token_days: PositiveInt = 14
    #: Login attempts allowed per (username, client address) in a burst, then one per
    #: ``login_refill_s`` seconds.
    login_burst: PositiveInt = 5
    login_refill_s: PositiveInt = 60
    #: Connections the API keeps open to PostgreSQL.
    api_pool_size: PositiveInt = 8
    #: Deprecated alias of ``timezone``.
    display_timezone: str = "Asia/Shanghai"
    #: Events a slow live-stream client may fall behind before it is disconnected.
    live_queue_size: PositiveInt = 256

    # --- ml: per-resident anomaly models (carecircle.ml; docs/ml.md) ---
    #: where versioned model files live; only files registered in ml_models are loaded
    ml_registry_dir: Path = Path("var/ml-registry")
    #: Deprecated alias of ``timezone``.
    ml_timezone: str = "Asia/Shanghai"
    ml_window_days: PositiveInt = 28
    ml_holdout_days: PositiveInt = 2
    ml_seed: int = 20261129
    #: nightly training at this local hour; hourly scoring at this minute past the hour
    ml_train_hour: int = Field(default=2, ge=0, le=23)
    #: The nightly job trains on no data after this time (an evaluation's held-out
    #: period: the models stay frozen); unset = up to now.
    ml_train_until: datetime | None = None
    ml_score_minute: int = Field(default=5, ge=0, le=59)

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
    #: `platform ingest` freezes its start-up heap and sets CPython's generation-0 GC
    #: threshold to this (Python's default is 700); 0 leaves the collector as it is.
    #: A batch keeps ~7 tracked objects per reading alive until its hand-off, so the
    #: default thresholds rescan them over and over (docs/ingest.md).
    ingest_gc_threshold: int = Field(default=50_000, ge=0)
    #: Prometheus /metrics port of `platform ingest`; 0 = off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    rollup_1m_retention_days: PositiveInt = 400
    rollup_1h_retention_days: PositiveInt = 3650
    rollup_interval_s: PositiveInt = 60
    maintain_interval_s: PositiveInt = 3600
    #: How often the scheduler publishes gateway configs changed since their last push.
    config_push_interval_s: PositiveInt = 30
