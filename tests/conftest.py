"""Shared fixtures: the real PostgreSQL and Mosquitto on 127.0.0.1, isolated per test run.

* Every test run gets its own freshly created database (``database_url``), migrated
  once; tests needing an empty one call ``fresh_database()``.  Databases are
  dropped at the end.
* Every test gets its own MQTT ``topic_root`` so runs sharing a broker never see
  each other's messages.

Override the servers with CARECIRCLE_TEST_PG_URL (a URL to an existing database
with the right to CREATE DATABASE) and CARECIRCLE_TEST_MQTT_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get(
    "CARECIRCLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("CARECIRCLE_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
RUN_ID = uuid.uuid4().hex[:8]


def _url_for(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def _databases() -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def fresh_database(_databases: list[str]) -> Callable[[], str]:
    """Create an empty database for this test run and return its URL."""

    def make() -> str:
        name = f"cc_test_{RUN_ID}_{len(_databases)}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        _databases.append(name)
        return _url_for(name)

    return make


@pytest.fixture(scope="session")
def database_url(fresh_database: Callable[[], str]) -> str:
    """A database for this test run, migrated to the current schema."""
    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the run's migrated database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    return MQTT_URL


@pytest.fixture
def topic_root() -> str:
    """A topic root no other test (or test run) uses."""
    return f"t{uuid.uuid4().hex[:12]}"
