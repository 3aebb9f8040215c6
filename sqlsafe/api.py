"""What the command line calls. Plain functions over the stages; no click here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import registry
from ._record import MutableRecord, record, replace
from .config import Config
from .discover import discover
from .lint import fails, lint
from .model import DiscoveryResult, Finding, LintResult, Migration

LINT_FORMATS = ("text", "json", "sarif", "github", "gitlab", "junit", "markdown")


class UsageError(Exception):
    """Bad input from the user that stops the command (exit 2)."""


@record
class LintRun(MutableRecord):
    paths: tuple[str, ...]
    config: Config
    fmt: str = "text"
    color: bool = False
    fix: bool = False
    changed_since: str | None = None
    baseline: str | None = None
    write_baseline: str | None = None
    stdin_text: str | None = None


@record
class LintOutcome(MutableRecord):
    result: LintResult
    rendered: str
    exit_code: int
    problems: list[str]
    fixed: int = 0


def read_stdin_if_needed(paths: tuple[str, ...]) -> str | None:
    if "-" not in paths:
        return None
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"<stdin>: not UTF-8 (byte {exc.start})") from None


def discover_paths(paths: tuple[str, ...], config: Config, stdin_text: str | None = None,
                   on_found: Callable[[Sequence[Migration]], None] | None = None,
                   ) -> DiscoveryResult:
    if stdin_text is None:
        stdin_text = read_stdin_if_needed(paths)
    return discover(list(paths), stdin_text=stdin_text, layout=config.layout,
                    assume_in_transaction=config.assume_in_transaction, on_found=on_found)


def problem_lines(result: DiscoveryResult) -> list[str]:
    out = []
    for p in result.problems:
        where = p.path if not p.line else f"{p.path}:{p.line}:{p.column}"
        out.append(f"{where}: {p.message}")
    return out


def run_lint(run: LintRun, early: Any = None) -> LintOutcome:
    """``early``: a parse worker started for this run (``entry._early_worker``), which
    this call always closes; without one, ``lint`` decides whether to start one itself."""
    try:
        if run.fmt not in LINT_FORMATS:
            raise UsageError(
                f"unknown format '{run.fmt}' (choose from {', '.join(LINT_FORMATS)})")
        from .lint import selection

        unknown = selection(run.config).unknown
        if unknown:
            raise UsageError(f"unknown rule(s): {', '.join(unknown)} (see `sqlsafe rules`)")
    except BaseException:
        if early is not None:
            early.close()
        raise
    try:
        # The worker starts parsing each path's migrations while the next path is read.
        disc = discover_paths(run.paths, run.config, run.stdin_text,
                              on_found=early.feed if early is not None else None)
        report_only = None
        changes = None
        if run.changed_since:
            from .gitdiff import changes as git_changes

            changes = git_changes(disc, run.changed_since)
            report_only = set(changes.paths)
        result = lint(disc, run.config, report_only=report_only, early=early)
    finally:
        if early is not None:
            early.close()  # (lint has closed it already, unless something raised first)
    fixed = 0
    if run.fix:
        fixed = apply_fixes(result)
        if fixed:
            disc = discover_paths(run.paths, run.config, run.stdin_text)
            result = lint(disc, run.config, report_only=report_only)
    if changes is not None:  # CP901: merged migrations this branch edited
        from .gitdiff import add_edit_findings

        result = add_edit_findings(result, changes, run.config)
    if run.write_baseline:
        from .baseline import write_baseline

        write_baseline(result, run.write_baseline)
    if run.baseline:
        from .baseline import filter_baseline

        result = filter_baseline(result, run.baseline)
    rendered = render_lint(result, run.fmt, color=run.color)
    if fixed:
        print(f"sqlsafe: applied {fixed} fix(es)", file=sys.stderr)
    code = 1 if fails(result, run.config.fail_on) else 0
    if disc.problems:
        code = 2
    if not disc.migrations and not disc.problems:
        code = 2
        return LintOutcome(result, rendered, code, ["no migration files found"], fixed)
    return LintOutcome(result, rendered, code, problem_lines(disc), fixed)


def sources_of(result: LintResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in result.migrations:
        if m.section.line_offset == 0:
            out[m.path] = m.section.text
        else:
            out[m.path] = "\n" * m.section.line_offset + m.section.text
    return out


def render_lint(result: LintResult, fmt: str, *, color: bool = False) -> str:
    if fmt == "text":
        from .formats import text

        return text.render(result, color=color, sources=sources_of(result))
    if fmt == "json":
        from .formats import json_

        return json_.render(result)
    import importlib

    try:
        module = importlib.import_module(f".formats.{fmt}", __package__)
    except ModuleNotFoundError:
        raise UsageError(f"format '{fmt}' is not available in this build") from None
    return str(module.render(result))


# ---------------------------------------------------------------------------- fixes


def apply_fixes(result: LintResult) -> int:
    """Apply every safe fix, file by file, edits from the end so offsets stay valid."""
    by_path: dict[str, list[Finding]] = {}
    for f in result.findings:
        if f.fix is not None and f.fix.safe:
            by_path.setdefault(f.path, []).append(f)
    abspaths = {m.path: m.abspath for m in result.migrations}
    count = 0
    for path, findings in by_path.items():
        abspath = abspaths.get(path)
        if not abspath:
            continue
        with open(abspath, "rb") as src:
            raw = src.read()
        bom = raw.startswith(b"\xef\xbb\xbf")
        text = raw.decode("utf-8-sig")
        edits = sorted({(f.fix.start, f.fix.end, f.fix.replacement) for f in findings
                        if f.fix is not None}, reverse=True)
        last_start = len(text) + 1
        for start, end, replacement in edits:
            if end > last_start:
                continue  # overlapping edit: leave it for the next run
            text = text[:start] + replacement + text[end:]
            last_start = start
            count += 1
        with open(abspath, "wb") as out:
            out.write((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return count


# ---------------------------------------------------------------------------- rule docs


def rule_doc_text(code: str, name: str) -> str | None:
    from importlib import resources  # only `explain` needs it; it costs a lint run 20 ms

    fname = f"{code}-{name}.md"
    try:
        res = resources.files("sqlsafe") / "rule_docs" / fname
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        pass
    repo = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "rules", fname)
    if os.path.isfile(repo):
        with open(repo, encoding="utf-8") as f:
            return f.read()
    return None


def explain(key: str) -> str:
    registry.load()
    m = registry.lookup(key)
    if m is None:
        raise UsageError(f"unknown rule '{key}' (see `sqlsafe rules`)")
    text = rule_doc_text(m.code, m.name)
    if text is None:
        return f"{m.code} {m.name} ({m.category}, {m.severity})\n\n{m.summary}\n"
    return text


def render_rules(fmt: str, show_all: bool = False) -> str:
    rules = [r for r in registry.all_rules() if show_all or r.func is not None]
    if fmt == "json":
        import json

        return json.dumps([{"code": r.code, "name": r.name, "category": r.category,
                            "severity": r.severity, "opt_in": r.opt_in, "fixable": r.fixable,
                            "summary": r.summary, "doc": r.doc} for r in rules], indent=2) + "\n"
    if fmt == "markdown":
        lines = ["| code | name | category | severity | summary |", "|---|---|---|---|---|"]
        for r in rules:
            sev = r.severity + (" (opt-in)" if r.opt_in else "")
            lines.append(f"| [{r.code}]({r.doc}) | {r.name} | {r.category} | {sev} | {r.summary} |")
        return "\n".join(lines) + "\n"
    width = max((len(r.name) for r in rules), default=10)
    lines = []
    for r in rules:
        flags = (" fix" if r.fixable else "") + (" opt-in" if r.opt_in else "")
        lines.append(f"{r.code}  {r.name:<{width}}  {r.category:<13} {r.severity:<8}{flags}")
    lines.append(f"{len(rules)} rules")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- check


@record
class _DryRunInputs(MutableRecord):
    discovery: DiscoveryResult
    lint: LintResult
    setup: str | None  # --setup, else the config's setup file
    pg_version: int | None  # the Docker image's version; None for the other engines
    image: str | None  # --image, or postgres:<major>.<minor> for a --pg-version 14.3


def _prepare_dry_run(paths: tuple[str, ...], config: Config, from_index: int,
                     setup: str | None, engine: str, image: str | None) -> _DryRunInputs:
    """What both ``dry-run`` and ``check`` do before they open a sandbox."""
    disc = discover_paths(paths, config)
    if not disc.migrations:
        raise UsageError("no migration files found" if not disc.problems
                         else "; ".join(problem_lines(disc)))
    if not 0 <= from_index < len(disc.migrations):
        raise UsageError(f"--from {from_index} is out of range (0..{len(disc.migrations) - 1})")
    if setup is None and config.setup:
        setup = _config_setup(config)
    # docker: the image of the target version (--pg-version) unless --image says otherwise;
    # local: that version's binaries when a version was given, else the newest installed;
    # embedded ships one version.
    pg = config.pg_version if (engine == "docker" and not image) or \
        (engine == "local" and config.pg_version_given) else None
    if engine == "docker" and pg is not None and config.pg_minor is not None:
        image = f"postgres:{config.pg_version}.{config.pg_minor}"  # the release asked for
    return _DryRunInputs(disc, lint(disc, config, keep_parsed=True), setup, pg, image)


def _config_setup(config: Config) -> str:
    assert config.setup is not None
    if not os.path.isfile(config.setup):
        raise UsageError(f"{config.source}: setup file {config.setup} not found")
    return config.setup


@record
class CheckRun(MutableRecord):
    paths: tuple[str, ...]
    config: Config
    engine: str = "embedded"
    database_url: str | None = None
    image: str | None = None
    setup: str | None = None  # path of SQL run before the first migration (production's schema)
    from_index: int = 0
    fmt: str = "markdown"  # markdown | html | json
    compact: bool = False
    timestamp: str | None = None  # None: the report is deterministic
    report_path: str | None = None  # default: dry_run_report.md (.html/.json) in the root
    checksums_path: str | None = None  # default: checksum.txt in the root
    on_progress: Any = None  # replay's ProgressCallback(index, total, migration, result)
    # dry-run-with-data keywords of dry_run (sample_rows, measure_blocking, inject_failures,
    # estimate_stats): commands.dryrun.data_keywords builds them
    data: dict[str, Any] | None = None
    # --versions: the majors to replay on; the first is the report's own replay (production's
    # major, by convention), the others are compared with it (``dryrun.matrix``)
    versions: tuple[int, ...] = ()


@record
class CheckOutcome(MutableRecord):
    report: Any  # sqlsafe.report.model.Report
    rendered: str
    exit_code: int
    report_file: str | None
    checksum_file: str | None
    problems: list[str]


REPORT_NAMES = {"markdown": "dry_run_report.md", "html": "dry_run_report.html",
                "json": "dry_run_report.json"}


def run_check(run: CheckRun, *, write: bool = True) -> CheckOutcome:
    """lint + dry run + verification + backout check + report + checksum.txt.

    Exit code: 1 on NO-GO, 0 on GO and CONDITIONAL GO; raises UsageError for bad input and
    ``SandboxError`` (exit 2) when the sandbox cannot start.
    """

    from .dryrun.replay import dry_run
    from .dryrun.sandbox import open_sandbox
    from .report import plan, render, verify
    from .report.build import build_report, relative_paths
    from .report.model import NO_GO

    if run.fmt not in REPORT_NAMES:
        raise UsageError(f"unknown report format '{run.fmt}' (choose from markdown, html, json)")
    matrix_plan: list[tuple[int, str]] = []
    if run.versions:
        matrix_plan = matrix_engines(run.versions, run.engine, run.image)
        first, first_engine = matrix_plan[0]
        run = replace(run, engine=first_engine, config=for_version(run.config, first))
    prep = _prepare_dry_run(run.paths, run.config, run.from_index, run.setup, run.engine,
                            run.image)
    disc, lint_result, setup = prep.discovery, prep.lint, prep.setup
    paths = relative_paths(disc)
    queries = plan.verification_queries(disc, paths, run.from_index)
    steps, _, _ = plan.backout(disc, paths, run.from_index)
    with open_sandbox(run.engine, pg_version=prep.pg_version, database_url=run.database_url,
                      image=prep.image, in_memory=_light(run.data, prep.setup),
                      settings=run.config.server_settings) as sandbox:
        dry = dry_run(disc, run.config, sandbox=sandbox, lint_result=lint_result,
                      setup=setup, from_index=run.from_index, on_progress=run.on_progress,
                      **(run.data or {}))
        with sandbox.connect() as conn:
            observed = verify.run_queries(conn, queries)
        backout_check = verify.check_backout(sandbox, disc, steps, setup_path=setup,
                                             config=run.config, from_index=run.from_index)
    matrix = None
    if matrix_plan:
        matrix = _other_versions(run, dry, matrix_plan, setup)
    checksum_file = run.checksums_path or os.path.join(disc.root, "checksum.txt")
    report = build_report(dry, lint_result, disc, verification=observed,
                          backout_check=backout_check, from_index=run.from_index,
                          checksum_file=os.path.basename(checksum_file),
                          timestamp=run.timestamp, matrix=matrix)
    rendered = render(report, run.fmt, compact=run.compact)
    report_file = run.report_path or os.path.join(disc.root, REPORT_NAMES[run.fmt])
    if write:
        from . import checksum as cs

        with open(report_file, "w", encoding="utf-8") as f:
            f.write(rendered)
        cs.write(disc, checksum_file)
    code = 1 if report.decision.verdict == NO_GO else 0
    return CheckOutcome(report, rendered, code, report_file if write else None,
                        checksum_file if write else None, problem_lines(disc))


# ---------------------------------------------------------------------------- dry run

# A --setup larger than this may load data, not just a schema.
_LARGE_SETUP = 64 << 20


def _light(data: dict[str, Any] | None, setup: str | None) -> bool:
    """Whether a dry run writes little enough data for a sandbox in memory: no synthetic
    rows or estimates, and no large --setup."""
    if data and (data.get("sample_rows") or data.get("estimate_stats") is not None):
        return False
    try:
        return not setup or os.path.getsize(setup) <= _LARGE_SETUP
    except OSError:
        return True  # load_setup reports the unreadable file


def _other_versions(run: CheckRun, dry: Any, plan: list[tuple[int, str]],
                    setup: str | None) -> tuple[list[Any], list[Any]]:
    """``check --versions``: the replay on every major after the first, compared with the
    first's (``dry``). Only the replay: verification queries and the backout check run once."""

    from .dryrun.matrix import VersionRun, differences

    others, _, _ = _version_runs(run.paths, run.config, plan[1:], setup=setup,
                                 from_index=run.from_index, on_progress=run.on_progress,
                                 data=run.data)
    runs = [VersionRun(plan[0][0], plan[0][1], dry), *others]
    return runs, differences(runs)


def _version_runs(paths: tuple[str, ...], config: Config, plan: list[tuple[int, str]],
                  **replay: Any) -> tuple[list[Any], LintResult | None, DiscoveryResult | None]:
    """``run_dry_run`` once per (major, engine) of ``plan``, each judged for its major:
    the VersionRuns, and the first run's lint result and discovery."""
    from .dryrun.matrix import VersionRun

    runs: list[VersionRun] = []
    first_lint: LintResult | None = None
    disc: DiscoveryResult | None = None
    for v, eng in plan:
        result, lint_result, disc = run_dry_run(paths, for_version(config, v), engine=eng,
                                                **replay)
        first_lint = first_lint or lint_result
        runs.append(VersionRun(v, eng, result))
    return runs, first_lint, disc


def run_dry_run(paths: tuple[str, ...], config: Config, *, engine: str,
                database_url: str | None = None, image: str | None = None,
                setup: str | None = None, from_index: int = 0, check_idempotency: bool = True,
                check_down: bool = True, on_progress: Any = None,
                on_sandbox_progress: Any = None,
                data: dict[str, Any] | None = None) -> tuple[Any, LintResult, DiscoveryResult]:
    """Lint, then open a sandbox and replay: (DryRunResult, LintResult, DiscoveryResult).

    Each migration's lint findings are attached to its MigrationResult. Raises UsageError for
    bad input and SandboxError (exit 2) when the sandbox cannot start. ``data`` holds the
    dry-run-with-data keywords of ``dry_run`` (sample_rows, measure_blocking,
    inject_failures, estimate_stats, estimate_sizes).
    """
    from .dryrun.replay import dry_run
    from .dryrun.sandbox import open_sandbox

    prep = _prepare_dry_run(paths, config, from_index, setup, engine, image)
    disc, lint_result = prep.discovery, prep.lint
    with open_sandbox(engine, pg_version=prep.pg_version, database_url=database_url,
                      image=prep.image, on_progress=on_sandbox_progress,
                      in_memory=_light(data, prep.setup),
                      settings=config.server_settings) as sandbox:
        result = dry_run(disc, config, sandbox=sandbox, lint_result=lint_result,
                         setup=prep.setup,
                         from_index=from_index, check_idempotency=check_idempotency,
                         check_down=check_down, on_progress=on_progress, **(data or {}))
    return result, lint_result, disc


def for_version(config: Config, major: int) -> Config:
    """``config`` judged for ``major`` (a replay of ``--versions``); a release given for the
    same major (``--pg-version 14.3`` with ``--versions 14,18``) keeps its minor."""
    minor = config.pg_minor if config.pg_version == major else None
    return replace(config, pg_version=major, pg_minor=minor, pg_version_given=True)


def matrix_engines(versions: tuple[int, ...], engine: str,
                   image: str | None = None) -> list[tuple[int, str]]:
    """(major, engine) for each version of ``--versions``: with the default engine the
    embedded server for its own major and local binaries for the others; local or docker for
    all when asked. Raises UsageError for the url engine (one server, one version), for an
    --image (one image), and for a version no engine here can run, before anything starts."""
    from .config import ConfigError, check_pg_version
    from .dryrun import sandbox as sb

    if image:
        raise UsageError("--versions runs postgres:<version> for each version with "
                         "--engine docker; --image names one image")
    if engine == "url":
        raise UsageError("--versions replays on one server per version; the url engine has "
                         "one: use --engine embedded, local or docker")
    if len(set(versions)) < 2:
        raise UsageError("--versions needs at least two different majors, e.g. --versions 15,18")
    plan: list[tuple[int, str]] = []
    for v in versions:
        try:
            check_pg_version(v, "--versions")
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        if engine == "docker":
            plan.append((v, "docker"))
            continue
        chosen = "embedded" if engine == "embedded" and v == sb.EMBEDDED_MAJOR else "local"
        try:
            if chosen == "local":
                sb._local_bindir(v)
            else:
                sb._embedded_bindir(None)
        except sb.SandboxError as exc:
            raise UsageError(f"--versions: PostgreSQL {v}: {exc} (or --engine docker for "
                             "every version)") from None
        plan.append((v, chosen))
    return plan


def run_matrix(paths: tuple[str, ...], config: Config, versions: tuple[int, ...], *,
               engine: str = "embedded", image: str | None = None,
               setup: str | None = None, from_index: int = 0,
               check_idempotency: bool = True, check_down: bool = True,
               on_progress: Any = None, on_sandbox_progress: Any = None,
               data: dict[str, Any] | None = None) -> tuple[Any, list[Any], LintResult,
                                                            DiscoveryResult]:
    """The dry run once per major of ``versions`` (``matrix_engines``), each linted for its
    own version: (VersionRuns, differences, the first version's LintResult, discovery)."""

    from .dryrun.matrix import differences

    runs, first_lint, disc = _version_runs(
        paths, config, matrix_engines(versions, engine, image), setup=setup,
        from_index=from_index, check_idempotency=check_idempotency, check_down=check_down,
        on_progress=on_progress, on_sandbox_progress=on_sandbox_progress, data=data)
    assert first_lint is not None and disc is not None
    return runs, differences(runs), first_lint, disc
