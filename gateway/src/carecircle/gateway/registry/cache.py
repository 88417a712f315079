"""The registry's local cache: the last accepted ``GatewayConfig`` as a JSON file.

Written atomically (temp file + fsync + rename) so a power cut leaves the old or the
new file, never half of one.  Loaded at start so the gateway works offline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import ValidationError

from carecircle.common.contract import GatewayConfig
from carecircle.common.errors import ConfigError, ContractError

log = logging.getLogger(__name__)


def parse_config(raw: bytes, gateway_id: str) -> GatewayConfig:
    """Validate a pushed config; raise :class:`ContractError` with the reason."""
    try:
        config = GatewayConfig.model_validate_json(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ContractError(f"invalid gateway config at {loc or '(root)'}: {first['msg']}") from err
    if config.gw != gateway_id:
        raise ContractError(f"config is for gateway {config.gw!r}, this is {gateway_id!r}")
    return config


class ConfigCache:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, gateway_id: str) -> GatewayConfig | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ConfigError(f"cannot read config cache {self.path}: {err.strerror}") from err
        try:
            return parse_config(raw, gateway_id)
        except ContractError as err:
            log.warning("ignoring config cache %s: %s", self.path, err)
            return None

    def save(self, config: GatewayConfig) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = config.model_dump_json(indent=1).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)
        except OSError as err:
            log.error("cannot write config cache %s: %s", self.path, err.strerror)
