"""checksum.txt: sha256sum format that the real sha256sum accepts, and --verify's findings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe.checksum import normalized, parse, verify, write
from sqlsafe.cli import cli
from sqlsafe.discover import discover

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def migdir(tmp_path: Path) -> Path:
    target = tmp_path / "set"
    shutil.copytree(REPO / "fixtures" / "dlq_heartbeat", target)
    return target


def _verify(d: Path) -> dict[str, str]:
    problems = verify(discover([str(d)]), (d / "checksum.txt").read_text())
    return {p.path: p.kind + " " + p.detail for p in problems}


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed")
def test_manifest_passes_real_sha256sum(migdir: Path) -> None:
    result = CliRunner().invoke(cli, ["checksum", str(migdir)])
    assert result.exit_code == 0, result.output
    proc = subprocess.run(["sha256sum", "-c", "--strict", "checksum.txt"], cwd=migdir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = [line.split("  ", 1)[1] for line in (migdir / "checksum.txt").read_text().splitlines()]
    # Apply order, each up followed by its down.
    assert names == ["migrations/001_create_job_dlq.up.sql", "migrations/001_create_job_dlq.down.sql",
                     "migrations/002_add_heartbeat_column.up.sql",
                     "migrations/002_add_heartbeat_column.down.sql"]


def test_manifest_lists_every_layout_file_once() -> None:
    # dbmate keeps up and down in one file: listed once.
    disc = discover([str(REPO / "fixtures" / "layouts" / "dbmate")])
    entries, problems = parse(_render(disc))
    assert not problems
    assert len(entries) == len({e.path for e in entries}) == len(disc.migrations)


def _render(disc):  # type: ignore[no-untyped-def]
    from sqlsafe.checksum import entries_of, render

    return render(entries_of(disc))


def test_verify_clean(migdir: Path) -> None:
    write(discover([str(migdir)]))
    assert _verify(migdir) == {}
    result = CliRunner().invoke(cli, ["checksum", "--verify", str(migdir)])
    assert result.exit_code == 0, result.output


def test_verify_catches_edit_delete_add_and_out_of_order(migdir: Path) -> None:
    write(discover([str(migdir)]))
    m = migdir / "migrations"
    (m / "001_create_job_dlq.up.sql").write_text(
        (m / "001_create_job_dlq.up.sql").read_text().replace("NOT NULL DEFAULT 0", "DEFAULT 1"))
    (m / "002_add_heartbeat_column.down.sql").unlink()
    (m / "003_jobs_priority.up.sql").write_text("ALTER TABLE qc_jobs ADD COLUMN priority int;\n")
    (m / "000_backfill_status.up.sql").write_text("UPDATE qc_jobs SET status = 'queued';\n")
    found = _verify(migdir)
    assert found["migrations/001_create_job_dlq.up.sql"].startswith("modified")
    assert found["migrations/002_add_heartbeat_column.down.sql"].startswith("removed")
    assert found["migrations/003_jobs_priority.up.sql"].startswith("added")
    assert found["migrations/000_backfill_status.up.sql"].startswith("out-of-order")
    assert "001_create_job_dlq.up.sql" in found["migrations/000_backfill_status.up.sql"]
    result = CliRunner().invoke(cli, ["checksum", "--verify", str(migdir)])
    assert result.exit_code == 1
    for name in found:
        assert name in result.output


def test_verify_catches_reordered(migdir: Path) -> None:
    write(discover([str(migdir)]))
    lines = (migdir / "checksum.txt").read_text().splitlines(keepends=True)
    # The manifest says 002 applied before 001: the files now apply in another order.
    (migdir / "checksum.txt").write_text("".join(lines[2:] + lines[:2]))
    found = _verify(migdir)
    assert any(v.startswith("reordered") for v in found.values()), found


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_cosmetic_and_semantic_edits(migdir: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=migdir, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "set")
    write(discover([str(migdir)]))
    up = migdir / "migrations" / "002_add_heartbeat_column.up.sql"
    text = up.read_text()
    up.write_bytes(("-- reviewed by ops\n" + text).replace("\n", "\r\n").encode())
    assert "cosmetic edit" in _verify(migdir)["migrations/002_add_heartbeat_column.up.sql"]
    up.write_text(text.replace("timestamptz", "timestamp"))
    assert "semantic edit" in _verify(migdir)["migrations/002_add_heartbeat_column.up.sql"]


def test_normalized_keeps_literals_and_drops_comments() -> None:
    a = "-- note\nCREATE TABLE t ( id int DEFAULT 'x  -- y' ); /* c /* nested */ */\n"
    b = "CREATE TABLE t(id int DEFAULT 'x  -- y');"
    assert normalized(a) == normalized(b)
    assert normalized("SELECT 'a  b'") != normalized("SELECT 'a b'")
    assert normalized("SELECT $f$ a  b $f$") != normalized("SELECT $f$ a b $f$")
