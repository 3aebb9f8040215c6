"""Shell completion through click's protocol, as bash, zsh and fish call the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqlsafe import registry
from sqlsafe.discover import LAYOUTS

SQLSAFE = [sys.executable, "-m", "sqlsafe"]


def _complete(words: str, cwd: Path | None = None) -> list[tuple[str, str]]:
    """What bash gets for the last word of ``words``: (kind, value) pairs."""
    env = {**os.environ, "_SQLSAFE_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    proc = subprocess.run(SQLSAFE, env=env, capture_output=True, text=True, cwd=cwd,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [tuple(line.split(",", 1)) for line in proc.stdout.splitlines()]  # type: ignore[misc]


def _values(words: str) -> list[str]:
    return [value for _, value in _complete(words)]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script(shell: str) -> None:
    env = {**os.environ, "_SQLSAFE_COMPLETE": f"{shell}_source"}
    proc = subprocess.run(SQLSAFE, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "_SQLSAFE_COMPLETE" in proc.stdout, proc.stderr


def test_commands_and_options() -> None:
    assert _values("sqlsafe li") == ["lint"]
    assert "dry-run" in _values("sqlsafe d")
    assert "--fail-on" in _values("sqlsafe lint --fa")
    assert _values("sqlsafe lint --fail-on w") == ["warning"]
    assert _values("sqlsafe lint --format s") == ["sarif"]
    assert _values("sqlsafe dry-run --engine l") == ["local"]


def test_rules_for_explain_and_rule_lists() -> None:
    registry.load()
    lk = sorted(c for c in registry.RULES if c.startswith("LK00"))
    assert _values("sqlsafe explain LK00") == lk
    assert _values("sqlsafe explain lk00") == lk  # codes in either case, as explain takes them
    assert _values("sqlsafe explain drop-t") == ["drop-table"]
    # The last item of a comma-separated list; what comes before it is kept.
    st = sorted(c for c in registry.RULES if c.startswith("ST0"))
    assert _values("sqlsafe lint --select LK001,ST0") == [f"LK001,{c}" for c in st]
    assert "security" in _values("sqlsafe check --ignore sec")  # a category
    assert _values("sqlsafe lint --profile s") == ["supabase"]
    assert _values("sqlsafe lint --layout go") == [x for x in LAYOUTS if x.startswith("go")]


def test_paths_complete_as_files(tmp_path: Path) -> None:
    # click leaves file names to the shell: it answers with the kind "file".
    assert _complete("sqlsafe lint mig", cwd=tmp_path) == [("file", "mig")]
    assert _complete("sqlsafe dry-run mig", cwd=tmp_path) == [("file", "mig")]
