"""``sqlsafe dry-run [PATH]``: replay the migrations on a disposable PostgreSQL and observe.

psycopg is imported only inside the command (through ``sqlsafe.dryrun.replay``): loading the
CLI for ``sqlsafe lint`` must not pay for it.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ..cli import EXIT_FINDINGS, EXIT_OK, EXIT_TOOL, common_options, fail, make_config

if TYPE_CHECKING:
    from ..dryrun.result import DryRunResult, MigrationResult
    from ..model import Migration

ENGINES = ("embedded", "docker", "local", "url")


@click.command("dry-run")
@click.argument("path", default=".")
@common_options
@click.option("--engine", type=click.Choice(ENGINES), default="embedded", show_default=True,
              help="Where to replay: the bundled PostgreSQL 18, a Docker image, PostgreSQL "
                   "binaries installed here, or an existing server (--database-url).")
@click.option("--database-url", envvar="SQLSAFE_DATABASE_URL", metavar="URL",
              help="Server for --engine url (env SQLSAFE_DATABASE_URL); only a scratch "
                   "database is created there, and dropped after.")
@click.option("--image", metavar="IMAGE", help="Docker image for --engine docker "
                                               "(default: postgres:<--pg-version>).")
@click.option("--setup", metavar="FILE",
              help="SQL applied before the first migration (e.g. pg_dump --schema-only).")
@click.option("--from", "from_index", type=int, default=0, metavar="N",
              help="Treat the first N migrations as already applied (replayed, not observed).")
@click.option("--no-idempotency", is_flag=True, help="Don't run each migration twice.")
@click.option("--no-down", is_flag=True, help="Don't check the down migrations' round trip.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def command(path: str, engine: str, database_url: str | None, image: str | None,
            setup: str | None, from_index: int, no_idempotency: bool, no_down: bool, fmt: str,
            **opts: Any) -> None:
    """Replay migrations on a disposable PostgreSQL: locks, rewrites, timings, errors,
    idempotency and down round trips, as the server reports them."""
    from .. import api
    from ..dryrun.sandbox import SandboxError

    cfg = make_config((path,), **opts)
    tty = sys.stderr.isatty()
    progress = _Progress() if tty and fmt == "text" else None
    try:
        result, _lint, disc = api.run_dry_run(
            (path,), cfg, engine=engine, database_url=database_url, image=image, setup=setup,
            from_index=from_index, check_idempotency=not no_idempotency,
            check_down=not no_down, on_progress=progress,
            on_sandbox_progress=(lambda m: click.echo(f"sqlsafe: {m}", err=True)) if tty
            else None)
    except api.UsageError as exc:
        fail(str(exc))
    except SandboxError as exc:
        click.echo(f"sqlsafe: error: {exc}", err=True)
        sys.exit(EXIT_TOOL)
    for line in api.problem_lines(disc):
        click.echo(f"sqlsafe: error: {line}", err=True)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(render_text(result), nl=False)
    sys.exit(EXIT_FINDINGS if result.failed else EXIT_OK)


def _strongest(m: MigrationResult) -> str:
    from ..locks import SQL_NAMES, rank

    best: tuple[str, str] | None = None
    for s in m.statements:
        for lock in s.locks:
            if best is None or rank(lock.mode) > rank(best[1]):
                best = (lock.relation, lock.mode)
    return f"{SQL_NAMES.get(best[1], best[1])} on {best[0]}" if best else "no locks on existing tables"


def _line(m: MigrationResult) -> str:
    mark = {"applied": "✓", "failed": "✗", "skipped": "-"}.get(m.status, "?")
    if m.status == "skipped":
        return f"{mark} {m.path}  skipped"
    if m.extras.get("pre_applied"):
        return f"{mark} {m.path}  {m.duration_ms:.0f} ms  (already applied)"
    return f"{mark} {m.path}  {m.duration_ms:.0f} ms  {_strongest(m)}"


class _Progress:
    """One line per migration on stderr (a terminal)."""

    def __call__(self, index: int, total: int, migration: Migration,
                 result: MigrationResult | None) -> None:
        if result is None:
            click.echo(f"\r[{index + 1}/{total}] {migration.path} ...\x1b[K", err=True, nl=False)
            return
        click.echo(f"\r{_line(result)}\x1b[K", err=True)


def render_text(result: DryRunResult) -> str:
    from ..locks import SQL_NAMES

    out = [f"PostgreSQL {result.server.version} ({result.server.engine})", ""]
    for m in result.migrations:
        out.append(_line(m))
        for s in m.statements:
            if s.error is not None:
                out.append(f"    {m.path}:{s.error.line}: error: {s.error.message}"
                           + (f" [{s.error.sqlstate}]" if s.error.sqlstate else ""))
                if s.error.sandbox_gap:
                    out.append(f"    (a gap of the sandbox, not of the migration: "
                               f"{s.error.sandbox_gap})")
                continue
            if s.locks or s.rewrites:
                locks = ", ".join(f"{SQL_NAMES.get(lk.mode, lk.mode)} {lk.relation}"
                                  for lk in s.locks)
                rw = f"; rewrites {', '.join(s.rewrites)}" if s.rewrites else ""
                out.append(f"    line {s.line}: {locks}{rw} ({s.duration_ms:.1f} ms)")
            for d in s.discrepancies:
                out.append(f"    line {s.line}: prediction differs: {d}")
        if m.error is not None and not any(s.error for s in m.statements):
            out.append(f"    {m.path}:{m.error.line}: error: {m.error.message}")
        if m.idempotent is False:
            out.append(f"    not idempotent: {m.idempotency_error}")
        if m.down.status == "failed" and m.down.error is not None:
            out.append(f"    down failed: line {m.down.error.line}: {m.down.error.message}")
        elif m.down.status == "applied" and not m.down.restores_schema:
            out.append("    down does not restore the schema: " + "; ".join(m.down.differences))
    applied = sum(1 for m in result.migrations if m.status == "applied")
    failed = sum(1 for m in result.migrations if m.status == "failed")
    skipped = sum(1 for m in result.migrations if m.status == "skipped")
    not_idem = sum(1 for m in result.migrations if m.idempotent is False)
    bad_down = sum(1 for m in result.migrations
                   if m.down.status == "failed" or m.down.restores_schema is False)
    out += ["", f"{applied} applied, {failed} failed, {skipped} skipped; "
                f"{not_idem} not idempotent; {bad_down} down migration(s) not restoring the schema"]
    for note in result.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"
