"""Synthetic rows: every user table gets N rows its constraints accept, and the failures only
rows reveal show up in the dry run. Real PostgreSQL, never mocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.dryrun.replay import dry_run
from sqlsafe.dryrun.sampledata import explain_failure, fill
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox

pytestmark = pytest.mark.postgres

WITH_DATA = Path(__file__).resolve().parents[2] / "fixtures" / "with_data"

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE teams (id serial PRIMARY KEY, slug varchar(8) NOT NULL UNIQUE, name text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  team_id int NOT NULL REFERENCES teams (id),
  manager_id bigint REFERENCES users (id),
  email text NOT NULL, nickname text, ext_id uuid NOT NULL UNIQUE, code char(3),
  score numeric(5,2) NOT NULL CHECK (score BETWEEN 10 AND 20),
  status text NOT NULL CHECK (status IN ('active', 'disabled')),
  m mood NOT NULL, tags text[] NOT NULL, ip inet, data jsonb NOT NULL, avatar bytea,
  born date, starts_at timestamp, ends_at timestamp, CHECK (ends_at > starts_at),
  age positive, flag boolean NOT NULL, ratio float8, n smallint, at time, span interval,
  shout text GENERATED ALWAYS AS (upper(email)) STORED
);
CREATE UNIQUE INDEX users_lower_email ON users (lower(email));
CREATE TABLE profiles (user_id bigint PRIMARY KEY REFERENCES users (id), bio text NOT NULL);
CREATE TABLE memberships (team_id int NOT NULL, user_id bigint NOT NULL,
  PRIMARY KEY (team_id, user_id), FOREIGN KEY (user_id) REFERENCES users (id),
  FOREIGN KEY (team_id) REFERENCES teams (id));
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE shapes (p polygon NOT NULL);
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with open_sandbox("embedded") as sb:
        yield sb


def _reset(sb: Sandbox, sql: str = "") -> None:
    with sb.connect() as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public; "
                     "DROP TYPE IF EXISTS mood; DROP DOMAIN IF EXISTS positive")
        if sql:
            conn.execute(sql)


def test_fill_satisfies_types_and_constraints(sandbox: Sandbox) -> None:
    _reset(sandbox, SCHEMA)
    with sandbox.connect() as conn:
        filled = fill(conn, 500)
        one = lambda q: conn.execute(q).fetchone()  # noqa: E731
        assert filled == {"public.teams": 500, "public.users": 500, "public.profiles": 500,
                          "public.memberships": 500, "public.events": 500}
        assert filled.notes == ["public.shapes: left empty: column p (polygon) is NOT NULL and "
                                "its type is not generated"]
        # Unique columns are distinct; the others repeat (as production data does).
        assert one("SELECT count(DISTINCT slug), count(DISTINCT name) FROM teams") == (500, 250)
        assert one("SELECT count(DISTINCT ext_id), count(DISTINCT lower(email)) FROM users") == \
            (500, 500)
        # Nullable columns hold some NULLs; the self-reference has no parent rows yet.
        assert one("SELECT count(*) FILTER (WHERE nickname IS NULL), count(manager_id) "
                   "FROM users") == (50, 0)
        # CHECKs hold (range, IN list, two columns), and so does the domain's.
        assert one("SELECT min(score) >= 10 AND max(score) <= 20, "
                   "count(DISTINCT status) FILTER (WHERE status NOT IN ('active', 'disabled')), "
                   "bool_and(ends_at > starts_at), min(age) > 0 FROM users") == \
            (True, 0, True, True)
        assert one("SELECT count(*) FROM events_2024") == (500,)
        assert one("SELECT count(*) FROM profiles p LEFT JOIN users u ON u.id = p.user_id "
                   "WHERE u.id IS NULL") == (0,)
        # Tables that have rows are left alone.
        assert fill(conn, 500) == {}


def test_fill_is_deterministic_per_seed(sandbox: Sandbox) -> None:
    ddl = "CREATE TABLE t (id int PRIMARY KEY, k uuid NOT NULL, v text NOT NULL)"
    seen = []
    for seed in (1, 1, 2):
        _reset(sandbox, ddl)
        with sandbox.connect() as conn:
            fill(conn, 50, seed=seed)
            seen.append(conn.execute("SELECT array_agg(k::text || v ORDER BY id) FROM t")
                        .fetchone())
    assert seen[0] == seen[1] != seen[2]


def _dry_run(sb: Sandbox, path: Path, rows: int):  # type: ignore[no-untyped-def]
    _reset(sb)
    return dry_run(discover([str(path)]), Config(), sandbox=sb, sample_rows=rows,
                   check_idempotency=False, check_down=False)


@pytest.mark.parametrize(("case", "line", "explanation"), [
    ("not_null", 3, "column heartbeat is NOT NULL with no default: existing rows violate it"),
    ("unique", 3, "existing rows have duplicate values in (email): the UNIQUE index cannot be "
                  "built"),
])
def test_with_data_fails_only_with_rows(sandbox: Sandbox, case: str, line: int,
                                        explanation: str) -> None:
    empty = _dry_run(sandbox, WITH_DATA / case, 0)
    assert [m.status for m in empty.migrations] == ["applied", "applied"]
    full = _dry_run(sandbox, WITH_DATA / case, 1000)
    first, second = full.migrations
    assert (first.status, second.status) == ("applied", "failed")
    assert Path(second.path).name.startswith("002_")
    assert second.error is not None and second.error.line == line
    assert second.extras["explanation"].startswith(explanation)
    assert second.to_json()["explanation"] == second.extras["explanation"]


def test_explain_failure_knows_the_row_failures() -> None:
    assert explain_failure("23514", 'check constraint "c" of relation "t" is violated by some row',
                           "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0)").startswith(
        "existing rows violate c")
    assert explain_failure("23502", 'column "a" of relation "t" contains null values',
                           "ALTER TABLE t ALTER COLUMN a SET NOT NULL").startswith(
        "column a has NULLs in existing rows")
    assert explain_failure("42601", "syntax error") is None


def test_cli_sample_rows_fails_with_the_explanation() -> None:
    from click.testing import CliRunner

    from sqlsafe.cli import cli

    result = CliRunner().invoke(cli, ["dry-run", str(WITH_DATA / "not_null"), "--sample-rows",
                                       "1000", "--no-idempotency", "--no-down"])
    assert result.exit_code == 1, result.output
    assert "002_add_heartbeat.sql:3: error: column \"heartbeat\" of relation \"workers\" " \
           "contains null values" in result.output
    assert "why: column heartbeat is NOT NULL with no default" in result.output
