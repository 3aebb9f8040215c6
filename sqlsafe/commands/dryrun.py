"""``sqlsafe dry-run [PATH]``: replay the migrations on a disposable PostgreSQL and observe.

psycopg is imported only inside the command (through ``sqlsafe.dryrun.replay``): loading the
CLI for ``sqlsafe lint`` must not pay for it.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ..cli import common_options, fail, make_config
from ..entry import EXIT_FINDINGS, EXIT_OK, EXIT_TOOL
from ..lint import fails

if TYPE_CHECKING:
    from ..dryrun.result import DryRunResult, MigrationResult
    from ..model import Migration

ENGINES = ("embedded", "docker", "local", "url")


def data_options(f: Any) -> Any:
    """Dry runs with data (shared by dry-run and check): synthetic rows, measured blocking,
    failure injection, runtime estimates at production size (docs/estimates.md)."""
    options = [
        click.option("--sample-rows", type=click.IntRange(min=0), default=0, metavar="N",
                     help="Fill every empty table with N synthetic rows before each migration "
                          "(tables that already have rows, e.g. from --setup, are kept)."),
        click.option("--measure-sizes/--no-measure-sizes", default=None,
                     help="Read every relation's size on disk before each migration and "
                          "after each statement, and report what each changed (default: "
                          "with --sample-rows)."),
        click.option("--measure-blocking", is_flag=True,
                     help="Probe a read and a write on each table a statement locks, from a "
                          "second session with a 50 ms lock_timeout."),
        click.option("--inject-failures", is_flag=True,
                     help="Interrupt each migration after every statement on a clone, retry "
                          "it, and report retries that fail or leave a different schema."),
        click.option("--estimate", is_flag=True,
                     help="Estimate each statement's duration and lock-hold at production "
                          "size (implied by --rows, --stats-file, --stats-from)."),
        click.option("--rows", "rows_option", metavar="TABLE=N,...",
                     help="Production row counts, e.g. orders=5M,users=120000."),
        click.option("--stats-file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Row counts exported from production (CSV or JSON; docs/estimates.md)."),
        click.option("--stats-from", metavar="URL",
                     help="Read row counts from production (read-only, one catalog query)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def server_options(f: Any) -> Any:
    """``--server-setting NAME=VALUE`` (shared by dry-run and check)."""
    return click.option(
        "--server-setting", "server_setting", multiple=True, metavar="NAME=VALUE",
        help="A PostgreSQL setting for the sandbox (repeatable), e.g. "
             "max_locks_per_transaction=256; over server_settings in the config. The url "
             "engine can only set what a session may.")(f)


def with_server_settings(cfg: Any, values: tuple[str, ...]) -> Any:
    """``cfg`` with the command line's --server-setting pairs over the config's."""
    from .._record import replace
    from ..config import ConfigError, parse_server_settings

    if not values:
        return cfg
    try:
        given = parse_server_settings(values)
    except ConfigError as exc:
        fail(str(exc))
    return replace(cfg, server_settings={**cfg.server_settings, **given})


def data_keywords(sample_rows: int = 0, measure_blocking: bool = False,
                  inject_failures: bool = False, estimate: bool = False,
                  rows_option: str | None = None, stats_file: str | None = None,
                  stats_from: str | None = None, measure_sizes: bool | None = None,
                  ) -> dict[str, Any]:
    """The ``dry_run`` keywords for the data options; raises UsageError on bad input."""
    from .. import api

    kw: dict[str, Any] = {"sample_rows": sample_rows, "measure_blocking": measure_blocking,
                          "inject_failures": inject_failures}
    if measure_sizes is not None:
        kw["measure_sizes"] = measure_sizes
    if estimate or rows_option or stats_file or stats_from:
        from ..dryrun import estimate as est

        stats: dict[str, Any] = {}
        try:
            if stats_from:
                stats.update(est.stats_from_url(stats_from))
            if stats_file:
                stats.update(est.load_stats_file(stats_file))
            if rows_option:
                stats.update(est.parse_rows_option(rows_option))  # --rows wins
        except (OSError, ValueError) as exc:
            raise api.UsageError(f"production row counts: {exc}") from None
        except Exception as exc:  # psycopg errors reaching --stats-from
            raise api.UsageError(f"--stats-from: {str(exc).strip().splitlines()[0]}") from None
        kw["estimate_stats"] = stats
    return kw


@click.command("dry-run")
@click.argument("path", default=".", type=click.Path())
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
@click.option("--versions", metavar="N,M,...",
              help="Replay on each of these PostgreSQL majors (the embedded server for 18, "
                   "local binaries for the others, or --engine docker for all) and report "
                   "where they differ: failures, locks, rewrites, rows, idempotency, down.")
@data_options
@server_options
def command(path: str, engine: str, database_url: str | None, image: str | None,
            setup: str | None, from_index: int, no_idempotency: bool, no_down: bool, fmt: str,
            versions: str | None, sample_rows: int, measure_sizes: bool | None,
            measure_blocking: bool, inject_failures: bool, estimate: bool, rows_option: str | None,
            stats_file: str | None, stats_from: str | None, server_setting: tuple[str, ...],
            **opts: Any) -> None:
    """Replay migrations on a disposable PostgreSQL: locks, rewrites, timings, errors,
    idempotency and down round trips, as the server reports them."""
    from .. import api
    from ..dryrun.sandbox import SandboxError

    cfg = with_server_settings(make_config((path,), **opts), server_setting)
    tty = sys.stderr.isatty()
    progress = _Progress() if tty and fmt == "text" else None
    replay: dict[str, Any] = {
        "setup": setup, "from_index": from_index, "check_idempotency": not no_idempotency,
        "check_down": not no_down, "on_progress": progress,
        "on_sandbox_progress": (lambda m: click.echo(f"sqlsafe: {m}", err=True)) if tty
        else None}
    try:
        replay["data"] = data_keywords(sample_rows, measure_blocking, inject_failures,
                                       estimate, rows_option, stats_file, stats_from,
                                       measure_sizes)
        if versions is not None:
            runs, diffs, lint_result, disc = api.run_matrix(
                (path,), cfg, parse_versions(versions), engine=engine, image=image, **replay)
        else:
            result, lint_result, disc = api.run_dry_run(
                (path,), cfg, engine=engine, database_url=database_url, image=image, **replay)
    except api.UsageError as exc:
        fail(str(exc))
    except SandboxError as exc:
        click.echo(f"sqlsafe: error: {exc}", err=True)
        sys.exit(EXIT_TOOL)
    for line in api.problem_lines(disc):
        click.echo(f"sqlsafe: error: {line}", err=True)
    if versions is not None:
        _print_matrix(runs, diffs, fmt)
        failed = any(r.result.failed for r in runs)
    else:
        failed = result.failed
        if fmt == "json":
            click.echo(json.dumps(result.to_json(), indent=2))
        else:
            click.echo(render_text(result), nl=False)
            if lint_result.findings:
                click.echo(f"lint: {lint_result.errors} error(s), {lint_result.warnings} "
                           "warning(s) on these migrations (sqlsafe lint shows them)")
    # DESIGN.md: 1 for a failed migration, or findings at or above --fail-on.
    sys.exit(EXIT_FINDINGS if failed or fails(lint_result, cfg.fail_on) else EXIT_OK)


def parse_versions(text: str) -> tuple[int, ...]:
    from .. import api

    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise api.UsageError(f"--versions {text!r}: give majors separated by commas, "
                             "e.g. 15,18") from None


def _print_matrix(runs: list[Any], diffs: list[Any], fmt: str) -> None:
    """``dry-run --versions``: each version's replay, then what differs."""
    if fmt == "json":
        click.echo(json.dumps({"version": 1, "matrix": [r.to_json() for r in runs],
                               "differences": [d.to_json() for d in diffs]}, indent=2))
        return
    for run in runs:
        click.echo(f"== PostgreSQL {run.pg_version} ({run.engine}) ==")
        click.echo(render_text(run.result), nl=False)
        click.echo("")
    majors = " and ".join(str(r.pg_version) for r in runs)
    if not diffs:
        click.echo(f"No differences between PostgreSQL {majors} in failures, locks, "
                   "rewrites, rows, idempotency or down migrations.")
        return
    click.echo(f"Differences between PostgreSQL {majors}:")
    for d in diffs:
        where = d.path if d.line is None else f"{d.path}:{d.line}"
        click.echo(f"  {where}: {d.message}")


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


def _data_lines(m: MigrationResult) -> list[str]:
    """Text for the dry-run-with-data extras: explanation, estimates, failure injection."""
    out: list[str] = []
    if m.extras.get("explanation"):
        out.append(f"    why: {m.extras['explanation']}")
    for e in m.extras.get("estimates", ()):
        if e.get("estimated_ms") is None:
            out.append(f"    line {e['line']}: estimate: {e['rows_source']}")
            continue
        out.append(f"    line {e['line']}: estimate at {e['rows']:,} rows of {e['relation']}: "
                   f"{e['estimated_ms'] / 1000:.2f} s, locks held {e['lock_hold_ms'] / 1000:.2f} s"
                   f" (risk {e.get('risk', '?')}; {e['fit']['model']} fit of "
                   f"{', '.join(str(x['rows']) for x in e['measured'])} rows; {e['rows_source']})")
    for e in m.extras.get("failure_injection", ()):
        if e["retry"] != "ok":
            where = (f"during statement {e['during_statement']}" if "during_statement" in e
                     else f"after statement {e['after_statement']}")
            out.append(f"    interrupted {where} (line {e['line']}): retry {e['retry']}: "
                       f"{e['error']}")
    return out


# Catalog changes alone write a few kB; the text output names WAL from here up (the JSON
# always carries it).
_WAL_WORTH_SHOWING = 1 << 20


def render_text(result: DryRunResult) -> str:
    from ..dryrun.result import describe_sizes, measured_size, signed_size, size_delta
    from ..locks import SQL_NAMES

    ready = result.startup_ms + result.setup_ms
    out = [f"PostgreSQL {result.server.version} ({result.server.engine})"
           + (f", ready in {ready / 1000:.2f} s" if ready else "")]
    if result.server.settings:
        out.append("server settings: " + ", ".join(f"{n} = {v}" for n, v in result.server.settings))
    out.append("")
    for m in result.migrations:
        out.append(_line(m))
        for s in m.statements:
            if s.error is not None:
                out.append(f"    {m.path}:{s.error.line}: error: {s.error.message}"
                           + (f" [{s.error.sqlstate}]" if s.error.sqlstate else ""))
                if s.error.sandbox_gap:
                    out.append(f"    (a gap of the sandbox, not of the migration: "
                               f"{s.error.sandbox_gap})")
                elif s.error.hint:
                    out.append(f"    hint: {s.error.hint}")
                continue
            if s.locks or s.rewrites:
                locks = ", ".join(f"{SQL_NAMES.get(lk.mode, lk.mode)} {lk.relation}"
                                  for lk in s.locks)
                rw = f"; rewrites {', '.join(s.rewrites)}" if s.rewrites else ""
                wal = (f", {measured_size(s.wal_bytes)} of WAL"
                       if s.wal_bytes is not None and s.wal_bytes >= _WAL_WORTH_SHOWING else "")
                disk = f", {signed_size(size_delta(s.sizes))} on disk" if s.sizes else ""
                out.append(f"    line {s.line}: {locks}{rw} ({s.duration_ms:.1f} ms{wal}{disk})")
            for d in s.discrepancies:
                out.append(f"    line {s.line}: prediction differs: {d}")
            if s.blocking:
                probes = ", ".join(f"{b.operation} {'blocked' if b.blocked else 'ok'}"
                                   f" on {b.relation}" for b in s.blocking)
                out.append(f"    line {s.line}: measured: {probes}")
            q = s.lock_queue
            if q is not None:
                then = ("a new read of it queued behind the statement" if q.read_blocked
                        else "a new read of it still went through")
                out.append(f"    line {s.line}: lock queue: waited {q.waited_ms:.0f} ms behind a "
                           f"running query on {q.relation}; meanwhile {then}")
        if m.sizes is not None:
            out.append(f"    relation sizes: {describe_sizes(m.sizes)}")
        out += _data_lines(m)
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
                f"{not_idem} not idempotent; {bad_down} down migration(s) not restoring the schema"
                f" (replay {result.replay_ms / 1000:.2f} s)"]
    for note in result.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"
