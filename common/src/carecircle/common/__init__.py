"""Shared pieces of CareCircle: the wire contract, settings, errors, clock and CLI root."""

__version__ = "0.1.0"
