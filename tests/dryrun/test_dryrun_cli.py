"""``sqlsafe dry-run`` end to end in a subprocess: JSON shape, exit codes, interruption."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqlsafe.dryrun import sandbox as sandbox_module

pytestmark = pytest.mark.postgres

SQLSAFE = [sys.executable, "-m", "sqlsafe"]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_json_and_exit_code_on_failure(tmp_path: Path) -> None:
    _write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n",
                      "002_b.sql": "ALTER TABLE a ADD COLUMN b int;\nSELECT nope FROM a;\n",
                      "003_c.sql": "CREATE TABLE c (id int);\n"})
    started = time.perf_counter()
    proc = subprocess.run([*SQLSAFE, "dry-run", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    wall_ms = (time.perf_counter() - started) * 1000
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["version"] == 1 and out["server"]["engine"] == "embedded"
    assert [m["status"] for m in out["migrations"]] == ["applied", "failed", "skipped"]
    assert out["migrations"][1]["error"]["line"] == 2
    first = out["migrations"][1]["statements"][0]
    assert first["locks"] == [{"relation": "public.a", "mode": "AccessExclusiveLock"}]
    # Where the time went: the sandbox's start, the scratch database, the migrations (up to
    # the failing one), each measured, none more than the whole command took.
    timing = out["timing"]
    assert set(timing) == {"startup_ms", "setup_ms", "replay_ms"}
    assert all(v > 0 for v in timing.values()) and sum(timing.values()) < wall_ms
    assert timing["replay_ms"] >= sum(m["duration_ms"] for m in out["migrations"][:2])


def test_sandbox_error_is_exit_2_with_one_line(tmp_path: Path) -> None:
    _write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    proc = subprocess.run([*SQLSAFE, "dry-run", str(tmp_path), "--engine", "url",
                           "--database-url", "postgresql://u:Hunter2@127.0.0.1:1/x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Hunter2" not in proc.stderr


def _ours(pid: int | None = None) -> set[str]:
    """sqlsafe sandbox dirs (in every dir a sandbox may go); with ``pid``, only those the
    process ``pid`` owns (other sqlsafe runs on the machine must not confuse the test)."""
    found = set()
    for p in (w for root in sandbox_module._sandbox_roots() for w in root.glob("sqlsafe-*")):
        if pid is not None:
            try:
                owner = (p / ".sqlsafe-sandbox-owner").read_text().split()[0]
            except (OSError, IndexError):
                continue
            if owner != str(pid):
                continue
        found.add(p.name)
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("text", [
    "SELECT pg_sleep(30);\n",
    # goose wraps the file in a transaction: it goes to the server as one message.
    "-- +goose Up\nSELECT 1;\nSELECT pg_sleep(30);\n",
], ids=["statement", "wrapped-file"])
def test_interrupt_leaves_nothing_behind(tmp_path: Path, signum: int, text: str) -> None:
    _write(tmp_path, {"001_sleep.sql": text})
    before = _ours()
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from sqlsafe.cli import main; sys.argv = ['sqlsafe', 'dry-run', sys.argv[1]]; main()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        new: set[str] = set()
        while time.monotonic() < deadline and not new:
            new = _ours(proc.pid) - before
            time.sleep(0.05)
        assert new, "the sandbox never started"
        time.sleep(1.5)  # into pg_sleep
        proc.send_signal(signum)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode != 0
    assert not (_ours() - before) & new
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert not any(name.encode() in cmdline for name in new)


def test_lint_errors_fail_the_dry_run_unless_fail_on_says_otherwise(tmp_path: Path) -> None:
    # DESIGN.md: exit 1 for findings at or above --fail-on, even when every migration applied.
    _write(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n",
                      "002_b.sql": "CREATE INDEX a_id ON a (id);\n"})
    proc = subprocess.run([*SQLSAFE, "dry-run", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert [m["status"] for m in json.loads(proc.stdout)["migrations"]] == ["applied", "applied"]
    assert proc.returncode == 1, proc.stderr  # LK001 on the index of an existing table
    proc = subprocess.run([*SQLSAFE, "dry-run", str(tmp_path), "--fail-on", "never"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "lint: 1 error(s)" in proc.stdout
