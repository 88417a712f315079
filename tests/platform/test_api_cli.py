"""`carecircle platform create-user` and `serve`'s refusals, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

CLI = [sys.executable, "-c", "from carecircle.common.cli import run; run()"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, timeout=60, stdin=None
    )


def test_create_user_then_sign_in(database_url: str, world: Any) -> None:
    name = f"{world.w}_cli_admin"
    r = run_cli(
        "platform",
        "create-user",
        "--database-url",
        database_url,
        "--username",
        name,
        "--role",
        "admin",
        "--place",
        world["p1"],
        env={"CARECIRCLE_NEW_USER_PASSWORD": "a long cli password"},
    )
    assert r.returncode == 0, r.stderr
    assert f"created admin {name}" in r.stdout
    assert "a long cli password" not in r.stdout + r.stderr
    row = world.conn.execute(
        "SELECT role, place_id, password_hash FROM users WHERE username = %s", (name,)
    ).fetchone()
    assert row[0] == "admin" and row[1] == world["p1"] and row[2].startswith("$argon2id$")
    # a role without its scope is refused with one line, no traceback
    bad = run_cli(
        "platform",
        "create-user",
        "--database-url",
        database_url,
        "--username",
        name + "2",
        "--role",
        "staff",
        env={"CARECIRCLE_NEW_USER_PASSWORD": "a long cli password"},
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "township place or a facility site" in bad.stderr


def test_serve_refuses_without_a_secret_outside_demo_mode(database_url: str) -> None:
    r = run_cli("platform", "serve", "--database-url", database_url, "--port", "1")
    assert r.returncode == 2
    assert "jwt_secret" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_an_unmigrated_database(fresh_database: Callable[[], str]) -> None:
    r = run_cli("platform", "serve", "--demo", "--database-url", fresh_database())
    assert r.returncode != 0 and "carecircle db migrate" in r.stderr
