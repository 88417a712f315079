"""Uplink to the platform broker: QoS 1, priority lane, batching, will and state."""

from carecircle.gateway.uplink.sender import UplinkOptions, UplinkSender

__all__ = ["UplinkOptions", "UplinkSender"]
