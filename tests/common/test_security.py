"""Secrets never reach a log line; default credentials are refused outside demo mode."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from carecircle.common.errors import ConfigError
from carecircle.common.logs import RedactingFilter, configure_logging, redact_secrets
from carecircle.common.mqtt import BrokerAddress
from carecircle.common.security import default_credential_problems, refuse_default_credentials
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store.db import redact

SECRET = "s3cr3t-Xy9"


@pytest.mark.parametrize(
    "text",
    [
        f"connecting to postgresql://cc:{SECRET}@db:5432/carecircle",
        f"mqtt://gw-1:{SECRET}@broker:1883 refused",
        f"Authorization: Bearer {SECRET}",
        f"password={SECRET} host=db",
        f'{{"password": "{SECRET}", "user": "x"}}',
        f"api_key: {SECRET}",
        f"token={SECRET}&next=1",
    ],
)
def test_redact_secrets_masks_passwords_and_tokens(text: str) -> None:
    clean = redact_secrets(text)
    assert SECRET not in clean
    assert "***" in clean


def test_redact_leaves_ordinary_text_and_user_names() -> None:
    text = "resident r-001 fall alert at postgresql://cc@db:5432/carecircle, 3 devices"
    assert redact_secrets(text) == text
    assert redact_secrets("postgresql://cc:pw@db/x") == "postgresql://cc:***@db/x"


def test_jwt_is_masked() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLWJ5dGVz"
    assert jwt not in redact_secrets(f"token refused: {jwt}")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("DEBUG", "json")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_configure_logging_installs_the_filter_on_every_record(captured: io.StringIO) -> None:
    log = logging.getLogger("some.library")
    log.warning("cannot reach %s", f"mqtt://gw:{SECRET}@host:1883")
    log.info("request", extra={"auth": f"Bearer {SECRET}"})
    try:
        raise RuntimeError(f"connect failed: password={SECRET}")
    except RuntimeError:
        log.exception("boom")
    out = captured.getvalue()
    assert SECRET not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["msg"] == "cannot reach mqtt://gw:***@host:1883"
    assert lines[1]["auth"] == "Bearer ***"
    assert "password=***" in lines[2]["exc"]


def test_filter_keeps_records_and_arguments_when_nothing_to_hide() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "resident %s ok", ("r-1",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "resident r-1 ok"
    assert record.args == ("r-1",)


def test_url_printers_hide_passwords() -> None:
    assert SECRET not in redact(f"postgresql://cc:{SECRET}@db:5432/x")
    assert SECRET not in str(BrokerAddress.from_url(f"mqtt://gw:{SECRET}@b:1883"))


@pytest.mark.parametrize(
    ("database_url", "mqtt_url", "problems"),
    [
        ("postgresql://postgres@127.0.0.1/cc", "mqtt://u:Strong-Pass-42@b:1883", 1),
        ("postgresql://postgres:postgres@db/cc", "mqtt://u:Strong-Pass-42@b:1883", 1),
        ("postgresql://cc:changeme@db/cc", "mqtt://127.0.0.1:1883", 2),
        ("postgresql://cc:CareCircle@db/cc", "mqtt://u:secret@b", 2),
        ("postgresql://cc:Strong-Pass-42@db/cc", "mqtts://gw:Other-Strong-1@b", 0),
        (
            "postgresql://cc@db/cc?sslcert=/etc/cc/client.crt&sslkey=/etc/cc/k",
            "mqtt://u:x9Y!z@b",
            0,
        ),
    ],
)
def test_default_credentials(database_url: str, mqtt_url: str, problems: int) -> None:
    settings = PlatformSettings(database_url=database_url, mqtt_url=mqtt_url)  # type: ignore[arg-type]
    found = default_credential_problems(settings)
    assert len(found) == problems, found
    if problems:
        with pytest.raises(ConfigError, match="default credentials") as err:
            refuse_default_credentials(settings, demo_mode=False)
        assert "Strong" not in str(err.value)
        refuse_default_credentials(settings, demo_mode=True)  # only warns
    else:
        refuse_default_credentials(settings, demo_mode=False)


def test_dispatcher_refuses_default_credentials_outside_demo_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from carecircle.common.cli import cli

    monkeypatch.delenv("CARECIRCLE_DEMO_MODE", raising=False)
    result = CliRunner().invoke(
        cli,
        [
            "platform",
            "dispatcher",
            "--database-url",
            "postgresql://postgres:postgres@127.0.0.1:9/x",
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert "default credentials" in str(result.exception)
