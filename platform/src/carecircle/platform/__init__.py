"""CareCircle platform: ingest → store → alerts → dispatch → notifications, API and dashboard."""
