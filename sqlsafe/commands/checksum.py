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
                   "every file modified, removed, added or out of order.")
@click.option("--checksums", "manifest", metavar="FILE",
              help="The manifest to write or verify (default: checksum.txt in PATH).")
def command(path: str, verify: bool, manifest: str | None, **opts: Any) -> None:
    """Write checksum.txt (sha256sum format, apply order) for the migrations in PATH."""
    from .. import api
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
    target = manifest or os.path.join(disc.root, cs.MANIFEST)
    if not verify:
        written, entries = cs.write(disc, target)
        click.echo(f"wrote {written} ({len(entries)} files)", err=True)
        sys.exit(EXIT_OK)
    try:
        with open(target, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        fail(f"cannot read {target}: {exc.strerror}")
    problems = cs.verify(disc, text)
    for p in problems:
        click.echo(f"{target}: {p.line()}")
    if problems:
        click.echo(f"{len(problems)} problem(s); after review, refresh with: sqlsafe checksum {path}",
                   err=True)
        sys.exit(EXIT_FINDINGS)
    click.echo(f"{target}: {len(cs.files_of(disc))} files OK")
    sys.exit(EXIT_OK)
