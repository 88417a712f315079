"""Device registry: bindings pushed by the platform (retained config), cached locally."""

from carecircle.gateway.registry.cache import ConfigCache, parse_config
from carecircle.gateway.registry.registry import Registry, is_bathroom, is_bathroom_presence

__all__ = ["ConfigCache", "Registry", "is_bathroom", "is_bathroom_presence", "parse_config"]
