"""Alerts: detectors (rules and models) → one active alert per (subject, kind) → lifecycle."""
