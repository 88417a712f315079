"""The HTTP API (``/api/v1``) and its app factory; the dashboard mounts on the same app."""
