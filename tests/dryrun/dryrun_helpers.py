"""Helpers the dry-run tests share: write a migration tree, replay it with lint predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.dryrun.replay import dry_run
from sqlsafe.dryrun.result import DryRunResult
from sqlsafe.dryrun.sandbox import Sandbox
from sqlsafe.lint import lint


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` (creating folders) and return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def replay(sandbox: Sandbox, root: Path, config: Config | None = None, **kw: Any) -> DryRunResult:
    """Discover ``root`` and replay it, judged for the sandbox's own major version."""
    disc = discover([str(root)])
    config = config or Config(pg_version=sandbox.server_version_num // 10000)
    return dry_run(disc, config, sandbox=sandbox, lint_result=lint(disc, config), **kw)


def reset_public(sandbox: Sandbox) -> Sandbox:
    """An empty public schema in the sandbox's scratch database (between test cases)."""
    with sandbox.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return sandbox
