"""``--changed-since``: in a real git repository with a history of several commits."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe.cli import cli

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "--version"], capture_output=True, check=False).returncode != 0,
    reason="git not installed")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main: three merged migrations; branch `feature` adds one more."""
    r = tmp_path / "app"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    # A partitioned parent: PostgreSQL cannot build an index on it CONCURRENTLY, so LK001 stays
    # quiet only when the lint knows (from 001) that `events` is partitioned.
    commit(r, {"db/migrations/001_events.sql":
               "CREATE TABLE IF NOT EXISTS events (id bigint, at timestamptz NOT NULL)"
               " PARTITION BY RANGE (at);\n"}, "events")
    commit(r, {"db/migrations/002_accounts.sql":
               "CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text);\n"},
           "accounts")
    # Dangerous but merged long ago: must not be reported on the branch.
    commit(r, {"db/migrations/003_accounts_email.sql":
               "CREATE INDEX accounts_email_idx ON accounts (email);\n"}, "old index")
    git(r, "checkout", "-q", "-b", "feature")
    commit(r, {"db/migrations/004_events_at.sql":
               "CREATE INDEX IF NOT EXISTS events_at_idx ON events (at);\n"}, "events index")
    monkeypatch.chdir(r)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return r


def lint_json(*args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(cli, ["lint", "--format", "json", *args])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def codes(data: dict) -> set[tuple[str, str]]:
    return {(Path(f["path"]).name, f["code"]) for f in data["findings"]}


def test_full_run_reports_the_old_migration(repo: Path) -> None:
    _, data = lint_json("db/migrations")
    assert ("003_accounts_email.sql", "LK001") in codes(data)


def test_only_changed_migrations_are_reported(repo: Path) -> None:
    _, data = lint_json("db/migrations", "--changed-since", "main")
    assert data["files"] == ["db/migrations/004_events_at.sql"]
    assert {p for p, _ in codes(data)} <= {"004_events_at.sql"}


def test_schema_state_of_older_migrations_still_applies(repo: Path) -> None:
    _, data = lint_json("db/migrations", "--changed-since", "main")
    # events is known to be partitioned (from 001), so no LK001 on the new index ...
    assert ("004_events_at.sql", "LK001") not in codes(data)
    # ... whereas the lone file, without that state, does get it: the state is what matters.
    _, alone = lint_json("db/migrations/004_events_at.sql")
    assert ("004_events_at.sql", "LK001") in codes(alone)


def test_uncommitted_and_untracked_files_count(repo: Path) -> None:
    (repo / "db/migrations/005_accounts_name.sql").write_text(
        "CREATE INDEX accounts_email_lower ON accounts (lower(email));\n")
    _, data = lint_json("db/migrations", "--changed-since", "HEAD")
    assert data["files"] == ["db/migrations/005_accounts_name.sql"]
    # accounts exists before 005 (created by 002), so the plain index blocks writes.
    assert ("005_accounts_name.sql", "LK001") in codes(data)


def test_commits_on_the_base_after_branching_are_not_reported(repo: Path) -> None:
    git(repo, "checkout", "-q", "main")
    commit(repo, {"db/migrations/010_main_only.sql":
                  "CREATE INDEX accounts_id2 ON accounts (id);\n"}, "on main")
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "--no-edit", "main")
    _, data = lint_json("db/migrations", "--changed-since", "main")
    assert data["files"] == ["db/migrations/004_events_at.sql"]


def test_edited_merged_migration_is_flagged(repo: Path) -> None:
    path = repo / "db/migrations/002_accounts.sql"
    path.write_text("CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text, "
                    "name text);\n")
    code, data = lint_json("db/migrations", "--changed-since", "main")
    assert code == 1
    cp = [f for f in data["findings"] if f["code"] == "CP901"]
    assert [f["path"] for f in cp] == ["db/migrations/002_accounts.sql"]
    assert cp[0]["rule"] == "edited-merged-migration" and "main" in cp[0]["message"]
    assert "db/migrations/002_accounts.sql" in data["files"]
    # Committing the edit doesn't hide it.
    git(repo, "commit", "-q", "-am", "edit an applied migration")
    _, data = lint_json("db/migrations", "--changed-since", "main")
    assert ("002_accounts.sql", "CP901") in codes(data)
    # New files are never CP901, and the rule can be turned off.
    assert ("004_events_at.sql", "CP901") not in codes(data)
    _, data = lint_json("db/migrations", "--changed-since", "main", "--ignore", "CP901")
    assert ("002_accounts.sql", "CP901") not in codes(data)


def test_whitespace_only_edit_says_so(repo: Path) -> None:
    path = repo / "db/migrations/002_accounts.sql"
    path.write_text(path.read_text().replace(" (id", "  (id") + "\n")
    _, data = lint_json("db/migrations", "--changed-since", "main")
    (cp,) = [f for f in data["findings"] if f["code"] == "CP901"]
    assert "only whitespace" in cp["message"]


@pytest.mark.parametrize("ref", ["no-such-branch", "--output=x"])
def test_bad_ref_is_a_usage_error(repo: Path, ref: str) -> None:
    res = CliRunner().invoke(cli, ["lint", "db/migrations", f"--changed-since={ref}"])
    assert res.exit_code == 2
    assert "sqlsafe: error:" in res.stderr and ref in res.stderr


def test_outside_a_repository_is_a_usage_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    (d / "001_a.sql").write_text("SELECT 1;\n")
    monkeypatch.chdir(d)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    res = CliRunner().invoke(cli, ["lint", ".", "--changed-since", "main"])
    assert res.exit_code == 2 and "git repository" in res.stderr
