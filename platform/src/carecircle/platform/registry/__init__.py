"""Registry: provisioning places, sites, people and devices; gateway configuration push."""

from carecircle.platform.registry.service import (
    ProvisionReport,
    gateway_config,
    gateway_configs,
    load_provisioning,
    provision,
    publish_configs,
)

__all__ = [
    "ProvisionReport",
    "gateway_config",
    "gateway_configs",
    "load_provisioning",
    "provision",
    "publish_configs",
]
