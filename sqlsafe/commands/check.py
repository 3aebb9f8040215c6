"""``sqlsafe check [PATH]``: lint + dry run + dry_run_report.md + checksum.txt, and the go/no-go.

jinja2 and psycopg are imported inside the command (through ``api.run_check``), never at import
time: ``sqlsafe lint`` loads this module too.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

import click

from ..cli import common_options, fail, make_config
from ..entry import EXIT_TOOL
from .dryrun import (
    data_keywords,
    data_options,
    parse_versions,
    server_options,
    with_server_settings,
)


@click.command("check")
@click.argument("path", default=".", type=click.Path())
@common_options
@click.option("--engine", type=click.Choice(["embedded", "docker", "local", "url"]),
              default=None, help="Where the dry run runs (default: embedded).")
@click.option("--database-url", metavar="URL",
              help="Server for --engine url (only a scratch database is created there).")
@click.option("--image", metavar="IMAGE", help="Docker image for --engine docker.")
@click.option("--setup", "setup_file", metavar="FILE",
              help="SQL run before the first migration: the schema production already has.")
@click.option("--from", "from_index", type=int, default=0, metavar="N",
              help="Report from the N-th migration (0-based); earlier ones only build the schema.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "html", "json"]),
              default="markdown", show_default=True, help="Format of the report.")
@click.option("--report", "report_path", metavar="FILE",
              help="Where to write the report (default: dry_run_report.md in the migrations "
                   "directory).")
@click.option("--checksums", "checksums_path", metavar="FILE",
              help="Where to write checksum.txt (default: in the migrations directory).")
@click.option("--compact", is_flag=True,
              help="Fit a pull-request comment (< 65,000 characters, truncated with a note).")
@click.option("--exit-zero", is_flag=True,
              help="Exit 0 even on NO-GO (the report still says NO-GO); for demos and reports "
                   "produced outside a gate.")
@click.option("--versions", metavar="N,M,...",
              help="Replay on each of these PostgreSQL majors, the first (production's) for "
                   "the report; what the others do differently goes into the report, and a "
                   "migration failing on any of them is a NO-GO.")
@click.option("--timestamp", is_flag=True,
              help="Stamp the report with the time (off: the same input gives the same report).")
@data_options
@server_options
def command(path: str, engine: str | None, database_url: str | None, image: str | None,
            setup_file: str | None, from_index: int, fmt: str, report_path: str | None,
            checksums_path: str | None, compact: bool, exit_zero: bool, timestamp: bool,
            versions: str | None, sample_rows: int, measure_sizes: bool | None,
            measure_blocking: bool, inject_failures: bool, estimate: bool, rows_option: str | None,
            stats_file: str | None, stats_from: str | None, server_setting: tuple[str, ...],
            **opts: Any) -> None:
    """Lint, replay on a disposable PostgreSQL, write the report and checksum.txt.

    Exit 1 on NO-GO, 2 when the tool could not do its job (e.g. the sandbox did not start),
    0 on GO and CONDITIONAL GO.
    """
    from .. import api
    from ..dryrun.sandbox import SandboxError

    if path == "-":
        fail("check needs migration files on disk, not stdin (checksum.txt lists files)")
    cfg = with_server_settings(make_config((path,), **opts), server_setting)
    if setup_file and not os.path.isfile(setup_file):
        fail(f"cannot read --setup {setup_file}: no such file")
    engine = engine or cfg.engine
    run = api.CheckRun(
        paths=(path,), config=cfg, engine=engine, database_url=database_url,
        image=image or cfg.image, setup=setup_file, from_index=from_index, fmt=fmt, compact=compact,
        timestamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if timestamp
        else None,
        report_path=report_path, checksums_path=checksums_path,
        on_progress=_progress if sys.stderr.isatty() else None)
    try:
        run.data = data_keywords(sample_rows, measure_blocking, inject_failures, estimate,
                                 rows_option, stats_file, stats_from, measure_sizes)
        if versions is not None:
            run.versions = parse_versions(versions)
        outcome = api.run_check(run)
    except api.UsageError as exc:
        fail(str(exc))
    except SandboxError as exc:
        message = str(exc)
        if "--engine embedded" not in message:
            message += " (the default --engine embedded needs no setup)"
        fail(f"the dry-run sandbox ({engine}) could not start: {message}")
    for line in outcome.problems:
        click.echo(f"sqlsafe: error: {line}", err=True)
    verdict = outcome.report.decision.verdict
    click.echo(f"{verdict}: wrote {outcome.report_file} and {outcome.checksum_file}", err=True)
    if outcome.problems:
        sys.exit(EXIT_TOOL)
    sys.exit(0 if exit_zero else outcome.exit_code)


def _progress(index: int, total: int, migration: Any, result: Any) -> None:
    """One line per migration on a terminal (the replay's ProgressCallback): called before a
    migration runs (result None) and after."""
    if result is None:
        return
    ms = getattr(result, "duration_ms", 0.0) or 0.0
    click.echo(f"sqlsafe: [{index + 1}/{total}] {migration.path}: {result.status} ({ms:.1f} ms)",
               err=True)
