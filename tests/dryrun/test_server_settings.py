"""``--server-setting NAME=VALUE`` (and ``server_settings`` in the config): the sandbox runs
with the settings production has. The managed engines give them to the server at start (any
setting, also server-wide ones); the url engine gives them to each session and refuses, with
the reason and nothing left behind, a setting a session cannot change. Real servers only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from dryrun_helpers import LOCAL_MAJOR, needs_local, write_tree

from sqlsafe.config import ConfigError, from_mapping, parse_server_settings
from sqlsafe.dryrun.sandbox import SandboxError, open_sandbox

pytestmark = pytest.mark.postgres

SETTINGS = {"max_locks_per_transaction": "128", "work_mem": "7MB",
            "application_name": "release 42 dry run"}


def _shown(conn: object, names: list[str]) -> dict[str, str]:
    return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine_version", [
    pytest.param(("embedded", None), id="pg18"),
    pytest.param(("local", LOCAL_MAJOR), id="pg15", marks=needs_local()),
])
def test_managed_engines_start_the_server_with_the_settings(
        engine_version: tuple[str, int | None]) -> None:
    engine, version = engine_version
    with open_sandbox(engine, pg_version=version, settings=SETTINGS) as sb:
        assert sb.settings == SETTINGS
        with sb.connect() as conn:
            assert _shown(conn, list(SETTINGS)) == SETTINGS
            # The sandbox's own settings still hold where the user said nothing.
            assert _shown(conn, ["autovacuum"]) == {"autovacuum": "off"}
        sb.create_database("clone", template=sb.dbname)
        with sb.connect("clone") as conn:
            assert _shown(conn, ["work_mem"]) == {"work_mem": "7MB"}


def test_url_engine_sets_session_settings_and_refuses_server_wide_ones() -> None:
    with open_sandbox("embedded") as server:
        assert server.workdir is not None
        sock = quote(str(server.workdir / "sock"), safe="")
        url = f"postgresql:///postgres?host={sock}&port=5432&user=postgres"
        session = {"work_mem": "7MB", "application_name": "release 42 dry run"}
        with open_sandbox("url", database_url=url, settings=session) as sb:
            with sb.connect() as conn:
                assert _shown(conn, list(session)) == session
        with pytest.raises(SandboxError) as raised:
            with open_sandbox("url", database_url=url,
                              settings={"shared_buffers": "256MB"}):
                pass
        message = str(raised.value)
        assert "shared_buffers" in message and "--engine embedded" in message
        with server.connect("postgres") as conn:
            left = conn.execute("SELECT datname FROM pg_database "
                                "WHERE datname LIKE 'sqlsafe_scratch%'").fetchall()
        assert left == []


def test_settings_from_config_and_command_line_reach_json_and_report(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "proj", {
        "migrations/001_a.sql": "CREATE TABLE a (id int);\n",
        ".sqlsafe.toml": '[server_settings]\nwork_mem = "8MB"\njit = false\n',
    })
    migrations = root / "migrations"
    proc = subprocess.run(
        [sys.executable, "-m", "sqlsafe", "dry-run", str(migrations), "--format", "json",
         "--server-setting", "work_mem=9MB", "--server-setting", "lock_timeout=2s"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    server = json.loads(proc.stdout)["server"]
    assert server["settings"] == {"work_mem": "9MB", "jit": "off", "lock_timeout": "2s"}
    proc = subprocess.run(
        [sys.executable, "-m", "sqlsafe", "check", str(migrations), "--server-setting",
         "max_locks_per_transaction=96"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = (migrations / "dry_run_report.md").read_text(encoding="utf-8")
    assert "| Server settings | work_mem = 8MB, jit = off, max_locks_per_transaction = 96 |" \
        in report


def test_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_server_settings(("work_mem",))
    with pytest.raises(ConfigError, match="not a server setting name"):
        from_mapping({"server_settings": {"work mem": "1MB"}}, "x.toml")
    with pytest.raises(ConfigError, match="string, number or boolean"):
        from_mapping({"server_settings": {"work_mem": ["1MB"]}}, "x.toml")
    migrations = write_tree(tmp_path, {"001_a.sql": "SELECT 1;\n"})
    proc = subprocess.run(
        [sys.executable, "-m", "sqlsafe", "dry-run", str(migrations), "--server-setting",
         "no_such_setting=1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no_such_setting" in proc.stderr and "Traceback" not in proc.stderr
