"""``carecircle alerts …`` against the real database."""

from __future__ import annotations

import json
import uuid

import psycopg
from click.testing import CliRunner

from carecircle.common.cli import cli

Conn = psycopg.Connection[tuple[object, ...]]


def test_rules_check_and_list(db: Conn, database_url: str) -> None:
    p = f"c{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    site = f"{p}-hh"
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'household', %s, 'H', 30.1, 120.1)",
        (site, f"{p}vi"),
    )
    db.execute(
        "INSERT INTO gateways (id, site_id, status, last_seen) "
        "VALUES (%s, %s, 'online', '2026-11-29T07:00:00Z')",
        (f"{p}-gw", site),
    )
    run = CliRunner()
    db_args = ["--database-url", database_url]

    refused = run.invoke(
        cli,
        [
            "alerts",
            "rule-put",
            "tachycardia",
            "--scope",
            "site",
            "--id",
            site,
            "--params",
            '{"threshold": 400}',
            *db_args,
        ],
    )
    # the console entry point turns CareCircleError into one line and exit code 1
    assert refused.exit_code == 1 and "can never happen" in str(refused.exception)
    ok = run.invoke(
        cli,
        [
            "alerts",
            "rule-put",
            "gateway_offline",
            "--scope",
            "site",
            "--id",
            site,
            "--params",
            '{"timeout_s": 600}',
            "--actor",
            "admin:1",
            *db_args,
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["params"]["timeout_s"] == 600
    shown = run.invoke(cli, ["alerts", "rules", "--scope", "site", "--id", site, *db_args])
    assert json.loads(shown.stdout)["gateway_offline"]["origin"] == "site"

    # seen 07:00; 07:09 is within the site's 10-minute timeout, 07:11 is not
    quiet = run.invoke(
        cli, ["alerts", "check", "--at", "2026-11-29T07:09:00+00:00", "--site", site, *db_args]
    )
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["opened"] == []
    loud = run.invoke(
        cli, ["alerts", "check", "--at", "2026-11-29T07:11:00+00:00", "--site", site, *db_args]
    )
    assert json.loads(loud.stdout)["opened"] == [["gateway_offline", f"{p}-gw"]]
    listed = run.invoke(cli, ["alerts", "list", "--site", site, "--active", *db_args])
    assert "gateway_offline" in listed.output and f"{p}-gw" in listed.output
    gone = run.invoke(
        cli, ["alerts", "rule-delete", "gateway_offline", "--scope", "site", "--id", site, *db_args]
    )
    assert gone.exit_code == 0
    bad = run.invoke(cli, ["alerts", "rules", "--scope", "site", *db_args])
    assert bad.exit_code != 0 and "needs --id" in bad.output
