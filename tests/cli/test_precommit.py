"""The pre-commit hooks, driven by the real ``pre-commit`` tool in a throwaway git repository.

The hooks run with ``repo: local`` and ``language: system`` pointing at this interpreter's
sqlsafe (``python -m sqlsafe``), so nothing is built or downloaded; every other hook setting
(types, require_serial, pass_filenames) is taken from the shipped ``.pre-commit-hooks.yaml``,
which is also checked against pre-commit's own manifest schema.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")
clientlib = pytest.importorskip("pre_commit.clientlib")

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / ".pre-commit-hooks.yaml"


def manifest() -> dict[str, dict[str, Any]]:
    return {h["id"]: h for h in clientlib.load_manifest(str(MANIFEST))}


def test_manifest_is_valid_for_pre_commit() -> None:
    hooks = manifest()
    assert {"sqlsafe", "sqlsafe-set", "sqlsafe-dry-run"} <= set(hooks)
    lint = hooks["sqlsafe"]
    assert lint["entry"] == "sqlsafe lint" and lint["language"] == "python"
    assert lint["types"] == ["sql"] and lint["require_serial"] is True
    assert lint["pass_filenames"] is True
    dry = hooks["sqlsafe-dry-run"]
    assert dry["entry"] == "sqlsafe dry-run" and dry["pass_filenames"] is False
    assert set(dry["stages"]) == {"manual", "pre-push"}
    assert "--changed-since" in hooks["sqlsafe-set"]["entry"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GIT_"))}
    env.update({"PRE_COMMIT_HOME": str(home / "pre-commit-cache"), "NO_COLOR": "1",
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def _local_hook(hook_id: str, args: list[str] | None = None) -> dict[str, Any]:
    shipped = manifest()[hook_id]
    sub = shipped["entry"].split(" ", 1)[1]  # "lint --changed-since HEAD", "lint", ...
    hook = {"id": hook_id, "name": shipped["name"],
            "entry": f"{shlex.quote(sys.executable)} -m sqlsafe {sub}",
            "language": "system"}
    for key in ("types", "require_serial", "pass_filenames"):
        hook[key] = shipped[key]
    if shipped["stages"]:  # empty means "every stage": leave pre-commit's default
        hook["stages"] = shipped["stages"]
    if args:
        hook["args"] = args
    return hook


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    (root / "db").mkdir(parents=True)
    env = _env(tmp_path)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, env=env, check=True)
    config = {"repos": [{"repo": "local", "hooks": [
        _local_hook("sqlsafe"),
        _local_hook("sqlsafe-set", ["db"]),
    ]}]}
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "db/001_accounts.sql").write_text(
        "CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text);\n")
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "init", "--no-verify"], cwd=root, env=env,
                   check=True)
    return root, env


def pre_commit(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--color", "never", *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_safe_migration_passes(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    (root / "db/002_orders.sql").write_text(
        "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, total bigint);\n")
    subprocess.run(["git", "add", "db/002_orders.sql"], cwd=root, env=env, check=True)
    res = pre_commit(root, env, "sqlsafe", "--files", "db/002_orders.sql")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Passed" in res.stdout


def test_dangerous_migration_fails_and_names_file_and_line(
        project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    (root / "db/002_index.sql").write_text(
        "-- search accounts by email\nCREATE INDEX accounts_email ON accounts (email);\n")
    subprocess.run(["git", "add", "db/002_index.sql"], cwd=root, env=env, check=True)
    res = pre_commit(root, env, "sqlsafe", "--files", "db/002_index.sql")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Failed" in res.stdout
    assert "db/002_index.sql:2:1:" in res.stdout and "LK001" in res.stdout


def test_set_hook_keeps_the_schema_state(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    # accounts comes from the committed 001: the whole-set hook knows it exists, reports only
    # the staged 002, and fails on it.
    (root / "db/002_index.sql").write_text("CREATE INDEX accounts_email ON accounts (email);\n")
    subprocess.run(["git", "add", "db/002_index.sql"], cwd=root, env=env, check=True)
    res = pre_commit(root, env, "sqlsafe-set")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "db/002_index.sql:1:1:" in res.stdout
    assert "001_accounts.sql" not in res.stdout
