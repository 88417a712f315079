"""The PostgreSQL/TimescaleDB store: connections, migrations and time-series maintenance."""

from carecircle.platform.store.db import connect
from carecircle.platform.store.migrate import MigrationResult, migrate
from carecircle.platform.store.timeseries import TimeSeriesBackend, backend_for

__all__ = ["MigrationResult", "TimeSeriesBackend", "backend_for", "connect", "migrate"]
