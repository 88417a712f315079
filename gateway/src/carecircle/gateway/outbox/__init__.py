"""Durable store-and-forward queue (SQLite, WAL) with a priority lane and bounds."""

from carecircle.gateway.outbox.store import DROP_ORDER, Item, Lane, Outbox, Row

__all__ = ["DROP_ORDER", "Item", "Lane", "Outbox", "Row"]
