"""Registry: provisioning places, sites, people and devices; retirement; gateway config push."""

from carecircle.platform.registry.service import (
    ProvisionReport,
    RetireReport,
    gateway_config,
    gateway_configs,
    load_provisioning,
    provision,
    publish_configs,
    push_pending_configs,
    retire_device,
    retire_gateway,
)

__all__ = [
    "ProvisionReport",
    "RetireReport",
    "gateway_config",
    "gateway_configs",
    "load_provisioning",
    "provision",
    "publish_configs",
    "push_pending_configs",
    "retire_device",
    "retire_gateway",
]
