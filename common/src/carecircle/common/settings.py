"""Settings: one pydantic-settings class per deployable, built once at start-up.

Values come from, highest priority first:

1. flags on the command line (passed to :func:`load_settings` as ``overrides``),
2. environment variables ``CARECIRCLE_<FIELD>`` (e.g. ``CARECIRCLE_DATABASE_URL``),
3. the deployable's table in a TOML file (``--config carecircle.toml``, ``[platform]``),
4. the defaults in the class.

An unknown key in the TOML file, a malformed URL or a value of the wrong type is a
:class:`~carecircle.common.errors.ConfigError` with one line saying what to fix.
"""

from __future__ import annotations

import contextvars
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AnyUrl, StringConstraints, UrlConstraints, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from carecircle.common.errors import ConfigError

#: Tables a CareCircle TOML file may contain, one per deployable.
KNOWN_SECTIONS = frozenset({"platform", "gateway", "sim", "ml", "bench", "demo"})

MqttUrl = Annotated[
    AnyUrl, UrlConstraints(allowed_schemes=["mqtt", "mqtts"], default_port=1883, host_required=True)
]
PostgresUrl = Annotated[
    AnyUrl,
    UrlConstraints(allowed_schemes=["postgresql", "postgres"], default_port=5432),
]

_toml_data: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "carecircle_toml_data", default=None
)


class _TomlSectionSource(PydanticBaseSettingsSource):
    """Feeds one table of the TOML file (set by :func:`load_settings`) into the model."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        data = _toml_data.get() or {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data.get() or {})


class CareCircleSettings(BaseSettings):
    """Base of every deployable's settings class."""

    model_config = SettingsConfigDict(
        env_prefix="CARECIRCLE_", extra="forbid", frozen=True, validate_default=True
    )

    #: The TOML table this deployable reads.
    section: ClassVar[str] = ""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    #: First segment of every CareCircle MQTT topic; lets several deployments
    #: (or test runs) share one broker without seeing each other.
    topic_root: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = "cc"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSectionSource(settings_cls))


S = TypeVar("S", bound=CareCircleSettings)


def read_toml(path: Path, section: str) -> dict[str, Any]:
    """Return ``[section]`` of a CareCircle TOML file, refusing unknown top-level keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist") from err
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
    for key, value in data.items():
        if key not in KNOWN_SECTIONS or not isinstance(value, dict):
            known = ", ".join(f"[{s}]" for s in sorted(KNOWN_SECTIONS))
            raise ConfigError(
                f"config file {path}: unknown top-level key {key!r}; "
                f"settings belong in one of the tables {known}"
            )
    section_data = data.get(section, {})
    assert isinstance(section_data, dict)
    return section_data


def _describe(cls: type[CareCircleSettings], err: ValidationError, path: Path | None) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(settings)"
    where = f"--{loc.replace('_', '-')} or CARECIRCLE_{loc.upper()}"
    if path is not None:
        where += f" or [{cls.section}] {loc} in {path}"
    if first["type"] == "extra_forbidden":
        return f"unknown setting {loc!r} for {cls.section or 'carecircle'}: remove it ({where})"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"invalid setting {loc}: {first['msg']}; fix {where}{more}"


def load_settings(
    cls: type[S], config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> S:
    """Build a deployable's settings from flags, environment and TOML file.

    ``overrides`` holds flags given on the command line; ``None`` values mean
    "not given" and are dropped so lower-priority sources apply.
    """
    toml_section = read_toml(config_file, cls.section) if config_file is not None else {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    token = _toml_data.set(toml_section)
    try:
        return cls(**given)
    except ValidationError as err:
        raise ConfigError(_describe(cls, err, config_file)) from err
    finally:
        _toml_data.reset(token)
