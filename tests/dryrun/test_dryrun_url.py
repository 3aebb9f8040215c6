"""``sqlsafe dry-run --engine url`` end to end, against a server this module starts itself
(the local PostgreSQL 15 engine where installed, else the embedded one) and treats as the
user's server: its ``keepme`` database must come out untouched, the scratch databases must be
gone, and the password in the URL must never be printed. Never mocked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from dryrun_helpers import write_tree
from psycopg import sql

from sqlsafe.dryrun import sandbox as sandbox_module
from sqlsafe.dryrun.sandbox import Sandbox, SandboxError, open_sandbox

pytestmark = pytest.mark.postgres

SQLSAFE = [sys.executable, "-m", "sqlsafe"]
# Characters that a URL must percent-encode: both spellings must stay hidden.
PASSWORD = "Hunter2/s3cr3t+pw"
OTHER_PASSWORD = "N0-createdb/pw+x"
WRONG_PASSWORD = "Wr0ng/guess+pw"


def _host_engine() -> tuple[str, int | None]:
    try:
        sandbox_module._local_bindir(15)
    except SandboxError:
        return "embedded", None
    return "local", 15


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    engine, version = _host_engine()
    with open_sandbox(engine, pg_version=version) as sb:
        assert sb.workdir is not None
        with sb.connect("postgres") as conn:
            conn.execute("CREATE DATABASE keepme")
            conn.execute(sql.SQL("CREATE ROLE ada LOGIN CREATEDB PASSWORD {}")
                         .format(sql.Literal(PASSWORD)))
            conn.execute(sql.SQL("CREATE ROLE nocreate LOGIN PASSWORD {}")
                         .format(sql.Literal(OTHER_PASSWORD)))
        with sb.connect("keepme") as conn:
            # The same names as the migrations below use: a run in the wrong database collides.
            conn.execute("CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL)")
            conn.execute("CREATE INDEX accounts_name ON accounts (name)")
            conn.execute("INSERT INTO accounts (name) VALUES ('ada'), ('grace'), ('linus')")
            conn.execute("CREATE SCHEMA billing")
            conn.execute("CREATE TABLE billing.invoices (id int PRIMARY KEY, "
                         "account_id int REFERENCES accounts (id), amount numeric(10, 2))")
            conn.execute("INSERT INTO billing.invoices VALUES (1, 1, 9.99), (2, 3, 120.00)")
            conn.execute("GRANT ALL ON SCHEMA public, billing TO ada")
        # The server listens on its unix socket only (no TCP): make that socket ask ada and
        # nocreate for their passwords, so that the password in the URL really is used.
        hba = sb.workdir / "data" / "pg_hba.conf"
        hba.write_text("local all ada,nocreate scram-sha-256\n" + hba.read_text())
        with sb.connect("postgres") as conn:
            # Log DDL (after the passwords were set): the log tells which databases were made.
            conn.execute("ALTER SYSTEM SET log_statement = 'ddl'")
            conn.execute("SELECT pg_reload_conf()")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_conninfo(sb, user="ada", dbname="postgres")).close()
        yield sb


def _conninfo(server: Sandbox, **params: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(server.dsn, **params)


def _socket_dir(server: Sandbox) -> str:
    assert server.workdir is not None
    return str(server.workdir / "sock")


def _url(server: Sandbox, user: str, password: str, form: str) -> str:
    sock = quote(_socket_dir(server), safe="")
    if form == "userinfo":
        return f"postgresql://{user}:{quote(password, safe='')}@/postgres?host={sock}&port=5432"
    return (f"postgresql:///postgres?host={sock}&port=5432&user={user}"
            f"&password={quote(password, safe='')}")


def _keepme(server: Sandbox) -> dict[str, object]:
    with server.connect("keepme") as conn:
        return {
            "classes": conn.execute(
                "SELECT oid, relnamespace::regnamespace::text, relname, relkind, relfilenode "
                "FROM pg_class ORDER BY oid").fetchall(),
            "namespaces": conn.execute(
                "SELECT oid, nspname FROM pg_namespace ORDER BY oid").fetchall(),
            "columns": conn.execute(
                "SELECT attrelid, attnum, attname, atttypid FROM pg_attribute "
                "WHERE attrelid >= 16384 ORDER BY 1, 2").fetchall(),
            "accounts": conn.execute("SELECT * FROM accounts ORDER BY id").fetchall(),
            "invoices": conn.execute("SELECT * FROM billing.invoices ORDER BY id").fetchall(),
            "sequence": conn.execute("SELECT last_value, is_called FROM accounts_id_seq")
                            .fetchall(),
        }


def _databases(server: Sandbox) -> list[str]:
    with server.connect("postgres") as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database ORDER BY datname")]


def _log(server: Sandbox) -> str:
    assert server.workdir is not None
    return (server.workdir / "server.log").read_text(errors="replace")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k != "SQLSAFE_DATABASE_URL"}
    return subprocess.run([*SQLSAFE, *args], capture_output=True, text=True, timeout=120,
                          env=env)


MIGRATIONS = {
    "20240101000000_accounts.sql": ("-- migrate:up\n"
                                    "CREATE SCHEMA billing;\n"
                                    "CREATE TABLE accounts (id int PRIMARY KEY, name text);\n"
                                    "CREATE TABLE billing.invoices (id int);\n"
                                    "INSERT INTO accounts VALUES (1, 'scratch');\n"
                                    "-- migrate:down\n"
                                    "DROP TABLE billing.invoices;\nDROP SCHEMA billing;\n"
                                    "DROP TABLE accounts;\n"),
    # Not transaction-safe: the idempotency and down checks run on clone databases.
    "20240102000000_index.sql": ("-- migrate:up transaction:false\n"
                                 "CREATE INDEX CONCURRENTLY accounts_name ON accounts (name);\n"
                                 "-- migrate:down transaction:false\n"
                                 "DROP INDEX CONCURRENTLY accounts_name;\n"),
    "20240103000000_email.sql": ("-- migrate:up\n"
                                 "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS email text;\n"
                                 "-- migrate:down\n"
                                 "ALTER TABLE accounts DROP COLUMN email;\n"),
}


def _assert_hidden(proc: subprocess.CompletedProcess[str], *passwords: str) -> None:
    for password in passwords:
        for form in (password, quote(password, safe=""), quote(password)):
            assert form not in proc.stdout
            assert form not in proc.stderr


@pytest.mark.parametrize("form", ["userinfo", "password-param"])
def test_url_run_leaves_the_server_as_it_was(server: Sandbox, tmp_path: Path, form: str) -> None:
    write_tree(tmp_path / "db" / "migrations", MIGRATIONS)
    keepme, databases = _keepme(server), _databases(server)
    log_start = len(_log(server))
    proc = _run(["dry-run", str(tmp_path / "db" / "migrations"), "--engine", "url",
                 "--database-url", _url(server, "ada", PASSWORD, form), "--format", "json",
                 "--fail-on", "never"])  # about the engine, not the lint findings
    _assert_hidden(proc, PASSWORD)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["server"] == {"engine": "url", "version": server.server_version}
    migrations = out["migrations"]
    assert [m["status"] for m in migrations] == ["applied"] * 3
    assert [m["idempotent"] for m in migrations] == [False, False, True]
    assert [m["down"] for m in migrations] == [{"status": "applied", "restores_schema": True}] * 3
    (cic,) = migrations[1]["statements"]
    assert {"relation": "public.accounts", "mode": "ShareUpdateExclusiveLock"} in cic["locks"]
    (add,) = migrations[2]["statements"]
    assert add["locks"] == [{"relation": "public.accounts", "mode": "AccessExclusiveLock"}]

    # The server's own log names the databases the run made: a scratch database and clones.
    log = _log(server)[log_start:]
    made = re.findall(r'CREATE DATABASE "?(sqlsafe_scratch_[0-9a-f]+\w*)', log)
    scratch = [name for name in made if re.fullmatch(r"sqlsafe_scratch_[0-9a-f]+", name)]
    assert len(scratch) == 1, made
    assert any(name.startswith(f"{scratch[0]}_clone") for name in made), made
    # A clone on a server we were given is copied through its WAL, as PostgreSQL does by
    # default: FILE_COPY (our own sandboxes' faster copy) would force a checkpoint on it.
    assert "CREATE DATABASE" in log and "FILE_COPY" not in log
    dropped = re.findall(r'DROP DATABASE IF EXISTS "?(sqlsafe_scratch_[0-9a-f]+\w*)', log)
    assert sorted(set(made)) == sorted(set(dropped))
    after = _databases(server)
    assert after == databases
    assert not set(made) & set(after)
    assert _keepme(server) == keepme


def test_wrong_password_is_exit_2_and_not_shown(server: Sandbox, tmp_path: Path) -> None:
    write_tree(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    databases = _databases(server)
    proc = _run(["dry-run", str(tmp_path), "--engine", "url", "--database-url",
                 _url(server, "ada", WRONG_PASSWORD, "userinfo"), "--format", "json"])
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "password authentication failed" in proc.stderr
    _assert_hidden(proc, WRONG_PASSWORD, PASSWORD)
    assert _databases(server) == databases


def test_role_without_createdb_is_exit_2_with_one_line(server: Sandbox, tmp_path: Path) -> None:
    write_tree(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    databases, keepme = _databases(server), _keepme(server)
    proc = _run(["dry-run", str(tmp_path), "--engine", "url", "--database-url",
                 _url(server, "nocreate", OTHER_PASSWORD, "password-param"), "--format", "json"])
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("sqlsafe: error: ")
    assert "role nocreate" in proc.stderr and "CREATEDB" in proc.stderr
    _assert_hidden(proc, OTHER_PASSWORD)
    assert _databases(server) == databases
    assert _keepme(server) == keepme
