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


# The Debian PostgreSQL the test machines have besides the embedded 18.
LOCAL_MAJOR = 15


def local_available(major: int = LOCAL_MAJOR) -> bool:
    """Whether PostgreSQL ``major`` binaries are installed here (for --engine local)."""
    from sqlsafe.dryrun import sandbox as sandbox_module
    from sqlsafe.dryrun.sandbox import SandboxError

    try:
        sandbox_module._local_bindir(major)
    except SandboxError:
        return False
    return True


def needs_local(major: int = LOCAL_MAJOR) -> Any:
    import pytest

    return pytest.mark.skipif(not local_available(major),
                              reason=f"no PostgreSQL {major} binaries on this machine")
