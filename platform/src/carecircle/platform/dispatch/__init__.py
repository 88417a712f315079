"""Dispatch within the 15-minute circle: rank responders, offer, lock, escalate, notify."""
