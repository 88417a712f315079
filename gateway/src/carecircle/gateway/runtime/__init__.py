"""The gateway process wiring (local broker, pipeline, queue, uplink, housekeeping)."""

from carecircle.gateway.runtime.gateway import Gateway, item_of, lane_of

__all__ = ["Gateway", "item_of", "lane_of"]
