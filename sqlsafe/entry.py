"""The ``sqlsafe`` entry point, and the lint command without click.

A pre-commit hook runs ``sqlsafe lint FILE...`` on every commit, and importing click costs a
fresh interpreter about 30 ms of a 0.15–0.2 s run. So ``main`` reads a plain ``lint`` command
line itself (``quick_lint_args``) and runs the same ``lint_command`` the click command runs;
anything else (another command, ``--help``, an option it does not know, a value click would
refuse, shell completion) goes to click (``sqlsafe.cli``), which then also reports the error.
``tests/cli/test_entry.py`` holds the option table to the click command's declarations and
runs command lines through both parsers.

Nothing here imports click.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ._record import replace
from .config import (
    POSTGRES_DIALECTS,
    Config,
    ConfigError,
    check_dialect,
    load_config,
    parse_pg_version,
)

EXIT_OK, EXIT_FINDINGS, EXIT_TOOL = 0, 1, 2


class CommandError(Exception):
    """A one-line reason for the user; the command exits 2."""


def csv_values(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


def make_config(paths: tuple[str, ...], config_file: str | None, pg_version: str | None,
                dialect: str | None, layout: str | None, assume_in_transaction: bool | None,
                select: tuple[str, ...], extend_select: tuple[str, ...], ignore: tuple[str, ...],
                profiles: tuple[str, ...], fail_on: str | None, **extra: Any) -> Config:
    """The config in force: the command line over the nearest config file over the defaults.
    Raises ConfigError."""
    start = paths[0] if paths and paths[0] != "-" else os.getcwd()
    if not os.path.exists(start):
        start = os.getcwd()
    cfg = load_config(config_file, start)
    if pg_version is not None:
        # The command line's version replaces the file's, minor release included.
        major, minor = parse_pg_version(pg_version)
        cfg = replace(cfg, pg_version=major, pg_minor=minor, pg_version_given=True)
    if dialect is not None:
        check_dialect(dialect)
    if dialect == "postgresql":
        dialect = "postgres"
    return cfg.merged(dialect=dialect, layout=layout,
                      assume_in_transaction=assume_in_transaction, select=csv_values(select),
                      extend_select=csv_values(extend_select), ignore=csv_values(ignore),
                      profiles=csv_values(profiles), fail_on=fail_on, **extra)


def use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def lint_command(paths: tuple[str, ...], fmt: str | None, output: str | None, color: str,
                 fix: bool, changed_since: str | None, baseline: str | None,
                 write_baseline: str | None, *, out: Callable[[str, bool], None],
                 err: Callable[[str], None], **opts: Any) -> int:
    """``sqlsafe lint``, whichever parser read the command line: its exit code. ``out``
    writes the report (text, colour wanted), ``err`` one line to stderr. Raises
    CommandError."""
    paths = paths or (".",)
    try:
        cfg = make_config(paths, **opts)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    # Before the rules are imported: the worker loads the parser meanwhile.
    early = _early_worker(paths, cfg.dialect)
    try:
        from . import api
    except BaseException:
        if early is not None:
            early.close()
        raise
    fmt = fmt or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    run = api.LintRun(paths=paths, config=cfg, fmt=fmt, color=use_color(color), fix=fix,
                      changed_since=changed_since, baseline=baseline,
                      write_baseline=write_baseline)
    try:
        outcome = api.run_lint(run, early)
    except api.UsageError as exc:
        raise CommandError(str(exc)) from None
    for line in outcome.problems:
        err(f"sqlsafe: error: {line}")
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(outcome.rendered)
    else:
        out(outcome.rendered, run.color)
    return outcome.exit_code


def _early_worker(paths: tuple[str, ...], dialect: str) -> Any:
    """A parse worker (``pipeline.Worker.early``) started before anything else of a lint
    run, when the paths look like a set large enough to use one: a folder, or many files.
    It loads the parser while this process loads the rules and discovers the set, so this
    one never needs to. None otherwise: one file from a pre-commit hook is parsed here, as
    quickly as the worker could start (and neither the pipeline nor pickle is imported)."""
    if dialect not in POSTGRES_DIALECTS or "-" in paths:
        return None
    if len(paths) < _EARLY_MIN_PATHS and not any(os.path.isdir(p) for p in paths):
        return None
    from .pipeline import Worker

    return Worker.early()


# Paths (files) from which a worker is started before discovery even without a folder.
_EARLY_MIN_PATHS = 8


# ---------------------------------------------------------------------------- the quick parser

# The lint command's options as click declares them (sqlsafe/cli.py): option -> parameter.
# A test compares these tables with the click command, so an option added there and not here
# fails it rather than silently sending every command line that uses it to click.
VALUE_OPTIONS = {
    "--config": "config_file", "--pg-version": "pg_version", "--dialect": "dialect",
    "--layout": "layout", "--fail-on": "fail_on", "--format": "fmt", "--output": "output",
    "-o": "output", "--color": "color", "--changed-since": "changed_since",
    "--baseline": "baseline", "--write-baseline": "write_baseline",
}
MULTIPLE_OPTIONS = {"--select": "select", "--extend-select": "extend_select",
                    "--ignore": "ignore", "--profile": "profiles"}
FLAG_OPTIONS = {"--fix": ("fix", True), "--assume-in-transaction": ("assume_in_transaction", True),
                "--no-assume-in-transaction": ("assume_in_transaction", False)}
CHOICES = {"fail_on": ("error", "warning", "info", "never"), "color": ("auto", "always", "never")}
DEFAULTS: dict[str, Any] = {
    "config_file": None, "pg_version": None, "dialect": None, "layout": None,
    "assume_in_transaction": None, "select": (), "extend_select": (), "ignore": (),
    "profiles": (), "fail_on": None, "fmt": None, "output": None, "color": "auto", "fix": False,
    "changed_since": None, "baseline": None, "write_baseline": None,
}


def quick_lint_args(argv: list[str]) -> dict[str, Any] | None:
    """The lint command's parameters from ``argv`` (without the program name), as click would
    pass them, or None when the command line is not a plain ``lint`` one."""
    if not argv or argv[0] != "lint":
        return None
    params = dict(DEFAULTS)
    multiple: dict[str, list[str]] = {}
    paths: list[str] = []
    rest = argv[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token == "-" or not token.startswith("-"):
            paths.append(token)
            continue
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in FLAG_OPTIONS and not eq:
            key, flag = FLAG_OPTIONS[name]
            params[key] = flag
            continue
        if name not in VALUE_OPTIONS and name not in MULTIPLE_OPTIONS:
            return None  # --help, -oFILE, --, a typo: click's to answer
        if not eq:
            if i >= len(rest):
                return None  # a missing value: click says so
            value = rest[i]
            i += 1
        if name in MULTIPLE_OPTIONS:
            multiple.setdefault(MULTIPLE_OPTIONS[name], []).append(value)
        else:
            key = VALUE_OPTIONS[name]
            if key in CHOICES and value not in CHOICES[key]:
                return None
            params[key] = value
    for key, values in multiple.items():
        params[key] = tuple(values)
    params["paths"] = tuple(paths)
    return params


# click strips these from output that does not go to a terminal unless colour is asked for.
_ANSI_RE = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def _write_out(text: str, color: bool) -> None:
    if not color and not sys.stdout.isatty():
        text = _ANSI_RE.sub("", text)
    sys.stdout.write(text)
    sys.stdout.flush()


def _write_err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _utf8(stream: Any) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding == "utf8"


def _quick(argv: list[str]) -> dict[str, Any] | None:
    if sys.platform == "win32":  # click expands wildcards in Windows command lines
        return None
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None  # a shell asking click for completions
    if not (_utf8(sys.stdout) and _utf8(sys.stderr)):
        return None  # click.echo knows what to do with other encodings
    return quick_lint_args(argv)


def run_guarded(run: Callable[[], int | None]) -> int:
    """Run a command and return its exit code: no traceback ever reaches the user."""
    try:
        return run() or 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        raise
    except KeyboardInterrupt:
        _write_err("sqlsafe: interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_TOOL
    except Exception as exc:  # the last line of defence: one line, no traceback
        if os.environ.get("SQLSAFE_DEBUG"):
            raise
        _write_err(f"sqlsafe: internal error: {type(exc).__name__}: {exc} "
                   "(set SQLSAFE_DEBUG=1 for a traceback)")
        return EXIT_TOOL


def _hard_exit(code: int) -> NoReturn:
    """Flush and leave without tearing the interpreter down, as mypy does: freeing every
    object of a large lint (parse trees, the schema state) one by one took about a tenth of
    a corpus run. Only for the lint, which holds no temp server, file or thread to clean up
    (nothing registers an atexit handler on its path; the output file is closed already)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a closed reader, a closed stream
            code = code or EXIT_TOOL
    os._exit(code)


def main() -> NoReturn:
    """Entry point of the ``sqlsafe`` script and ``python -m sqlsafe``."""
    # A run builds hundreds of thousands of small objects (parse trees, actions, findings)
    # that reference counting frees; almost none form cycles. At the default thresholds the
    # cycle collector ran 162 times over a corpus lint (one full collection walking every
    # object), about a tenth of the run, and unpickling a parse worker's output
    # (``pipeline``) set off more. Collecting every 50,000 allocations still bounds cycles.
    gc.set_threshold(50_000, 20, 100)
    params = _quick(sys.argv[1:])
    if params is None:
        from .cli import main as click_main

        click_main()
        sys.exit(EXIT_OK)

    def run() -> int:
        try:
            return lint_command(out=_write_out, err=_write_err, **params)
        except CommandError as exc:
            _write_err(f"sqlsafe: error: {exc}")
            return EXIT_TOOL

    _hard_exit(run_guarded(run))
