"""The gateway process wiring (local broker, pipeline, queue, uplink, housekeeping)."""

from carecircle.gateway.runtime.gateway import Gateway, item_of, lane_of
from carecircle.gateway.runtime.host import GatewayHost

__all__ = ["Gateway", "GatewayHost", "item_of", "lane_of"]
