"""Settings precedence and the CLI's one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carecircle.common.errors import ConfigError
from carecircle.common.settings import load_settings
from carecircle.platform.settings import PlatformSettings

CLI = [sys.executable, "-c", "from carecircle.common.cli import run; run()"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    full_env.update(env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_precedence_flag_over_env_over_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text(
        "[platform]\nraw_retention_days = 30\nhttp_port = 9000\n"
        'database_url = "postgresql://a@db.example:5432/x"\n'
    )
    monkeypatch.setenv("CARECIRCLE_HTTP_PORT", "9100")
    s = load_settings(PlatformSettings, cfg, {"raw_retention_days": None})
    assert s.raw_retention_days == 30 and s.http_port == 9100
    assert s.database_url.host == "db.example"
    s2 = load_settings(PlatformSettings, cfg, {"http_port": 9200})
    assert s2.http_port == 9200


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text("[platform]\ndatabse_url = 'postgresql://x/y'\n")
    with pytest.raises(ConfigError, match="unknown setting 'databse_url'"):
        load_settings(PlatformSettings, cfg)
    cfg.write_text("log_level = 'INFO'\n")
    with pytest.raises(ConfigError, match="unknown top-level key 'log_level'"):
        load_settings(PlatformSettings, cfg)


def test_malformed_url_is_an_error() -> None:
    with pytest.raises(ConfigError, match="database_url"):
        load_settings(PlatformSettings, None, {"database_url": "mysql://nope"})


@pytest.mark.parametrize(
    ("args", "env", "expect"),
    [
        (["db", "migrate", "--database-url", "not a url"], {}, "invalid setting database_url"),
        (
            ["db", "migrate"],
            {"CARECIRCLE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"},
            "cannot connect to PostgreSQL",
        ),
        (["db", "migrate"], {"CARECIRCLE_MQTT_URL": "http://wrong"}, "invalid setting mqtt_url"),
    ],
)
def test_cli_bad_settings_give_one_clear_line(
    args: list[str], env: dict[str, str], expect: str
) -> None:
    out = run_cli(*args, env=env)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert expect in lines[0] and "Traceback" not in out.stderr


def test_cli_unknown_toml_key_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text("[platform]\nretention = 3\n")
    out = run_cli("--config", str(cfg), "db", "migrate")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown setting 'retention'" in out.stderr


def test_every_command_has_help() -> None:
    """Every command and sub-command of the installed tree answers ``--help``.  The console
    path once in a process of its own; the tree in this process (one import of every
    component instead of one per command)."""
    import click
    from click.testing import CliRunner

    from carecircle.common.cli import cli

    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout
    for group in ("db", "gateway", "platform", "sim", "ml"):
        assert group in out.stdout, group

    runner = CliRunner()
    seen: list[str] = []

    def walk(path: list[str], command: click.Command) -> None:
        result = runner.invoke(cli, [*path, "--help"], prog_name="carecircle")
        assert result.exit_code == 0, (path, result.output, result.exception)
        assert "Usage:" in result.output, path
        seen.append(" ".join(path))
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path[-1] if path else "carecircle")
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, (path, name)
                walk([*path, name], sub)

    walk([], cli)
    assert {"db migrate", "gateway run", "gateway status"} <= set(seen), seen
