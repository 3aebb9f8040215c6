"""``sqlsafe checksum [PATH]``: write checksum.txt, or verify it with ``--verify``."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..cli import common_options, fail, make_config
from ..entry import EXIT_FINDINGS, EXIT_OK


@click.command("checksum")
@click.argument("path", default=".", type=click.Path())
@common_options
@click.option("--verify", is_flag=True,
              help="Check the files against the manifest instead of writing it; exit 1 naming "
                   "every file modified, removed, added or out of order. An Atlas directory's "
                   "atlas.sum is checked too.")
@click.option("--flyway-history", "flyway_history", metavar="FILE",
              help="With --verify: check the scripts against Flyway's schema history instead, "
                   "exported as CSV or JSON (SELECT version, script, checksum, success FROM "
                   "flyway_schema_history): edited, removed and out-of-order scripts.")
@click.option("--checksums", "manifest", metavar="FILE",
              help="The manifest to write or verify (default: checksum.txt in PATH; "
                   "an atlas.sum is verified in Atlas's format).")
def command(path: str, verify: bool, flyway_history: str | None, manifest: str | None,
            **opts: Any) -> None:
    """Write checksum.txt (sha256sum format, apply order) for the migrations in PATH."""
    from .. import api, atlassum
    from .. import checksum as cs

    if path == "-":
        fail("checksum needs files on disk, not stdin")
    cfg = make_config((path,), **opts)
    disc = api.discover_paths((path,), cfg)
    for line in api.problem_lines(disc):
        click.echo(f"sqlsafe: error: {line}", err=True)
    if disc.problems:
        sys.exit(2)
    if not disc.migrations:
        fail(f"no migration files found in {path}")
    if flyway_history:
        if not verify:
            fail("--flyway-history checks the scripts: give --verify too")
        sys.exit(_verify_flyway(disc, flyway_history))
    target = manifest or os.path.join(disc.root, cs.MANIFEST)
    if not verify:
        if os.path.basename(target) == atlassum.FILENAME:  # what `atlas migrate hash` writes
            directory = os.path.dirname(os.path.abspath(target))
            listed = atlassum.hashes(atlassum.sql_files(directory))
            with open(target, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
                f.write(atlassum.render(listed))
            click.echo(f"wrote {target} ({len(listed)} files)", err=True)
            sys.exit(EXIT_OK)
        written, entries = cs.write(disc, target)
        click.echo(f"wrote {written} ({len(entries)} files)", err=True)
        sys.exit(EXIT_OK)
    # The manifests to check: the one named, else checksum.txt and an Atlas directory's
    # atlas.sum, whichever exist (checksum.txt is reported missing when neither does).
    if manifest:
        targets = [manifest]
    else:
        atlas = os.path.join(_set_dir(disc), atlassum.FILENAME)
        targets = [t for t in (target, atlas) if os.path.exists(t)] or [target]
    failed = 0
    for t in targets:
        try:
            with open(t, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {t}: {getattr(exc, 'strerror', None) or exc}")
        if os.path.basename(t) == atlassum.FILENAME or text.startswith("h1:"):
            problems, count = atlassum.verify(os.path.dirname(os.path.abspath(t)), text)
            refresh = "atlas migrate hash"
        else:
            problems = cs.verify(disc, text)
            count = len(cs.files_of(disc))
            refresh = f"sqlsafe checksum {path}"
        for p in problems:
            click.echo(f"{t}: {p.line()}")
        if problems:
            failed += 1
            click.echo(f"{t}: {len(problems)} problem(s); after review, refresh with: {refresh}",
                       err=True)
        else:
            click.echo(f"{t}: {count} files OK")
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)


def _verify_flyway(disc: Any, history_file: str) -> int:
    from .. import flywaysum

    try:
        with open(history_file, encoding="utf-8-sig") as f:
            history = flywaysum.load_history(f.read(), history_file)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {history_file}: {getattr(exc, 'strerror', None) or exc}")
    except flywaysum.HistoryError as exc:
        fail(str(exc))
    problems, pending = flywaysum.verify(disc, history)
    for p in problems:
        click.echo(f"{history_file}: {p.line()}")
    waiting = f", {len(pending)} pending" if pending else ""
    if problems:
        click.echo(f"{history_file}: {len(problems)} problem(s){waiting}; Flyway's validate "
                   "would fail", err=True)
        return EXIT_FINDINGS
    applied = sum(1 for row in history if row["version"] is not None and row["success"]
                  and row["checksum"] is not None)  # not the baseline marker
    click.echo(f"{history_file}: {applied} applied script(s) match{waiting}")
    return EXIT_OK


def _set_dir(disc: Any) -> str:
    """The directory that holds the set's files (an Atlas directory keeps atlas.sum there)."""
    dirs = {os.path.dirname(m.abspath) for m in disc.migrations if m.abspath}
    return dirs.pop() if len(dirs) == 1 else str(disc.root)
