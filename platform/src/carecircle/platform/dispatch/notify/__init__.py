"""Notifiers: one interface, several channels (MQTT, webhook, e-mail, SMS)."""

from carecircle.platform.dispatch.notify.base import (
    DeliveryResult,
    Notification,
    Notifier,
    render_text,
)

__all__ = ["DeliveryResult", "Notification", "Notifier", "render_text"]
