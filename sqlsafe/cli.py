"""The command line: thin click commands over ``sqlsafe.api``.

The ``sqlsafe`` script starts in ``sqlsafe._launch`` (Ctrl-C while it loads) and goes on in
``sqlsafe.entry``, which runs plain ``lint`` command lines without click and sends every other
one here.

The lint path imports neither psycopg, jinja2 nor testcontainers (a pre-commit run must stay
fast); dry-run and report modules are imported inside the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from . import __version__, entry
from .config import Config, ConfigError
from .entry import EXIT_OK, EXIT_TOOL


class ToolError(click.ClickException):
    """A one-line reason on stderr and exit code 2."""

    exit_code = EXIT_TOOL

    def show(self, file: Any = None) -> None:
        click.echo(f"sqlsafe: error: {self.format_message()}", err=True)


def fail(message: str) -> NoReturn:
    raise ToolError(message)


# -- shell completion (click's: ``eval "$(_SQLSAFE_COMPLETE=bash_source sqlsafe)"``) ---------
# The callbacks run only when the shell asks; they import what they list then.


def _complete_from(names: Callable[[], list[str]]) -> Callable[..., list[Any]]:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        return [n for n in names() if n.startswith(incomplete)]

    return complete


def _rule_keys() -> list[str]:
    """Codes, names, categories and profiles: what --select and friends accept."""
    from . import registry
    from .model import CATEGORIES

    metas = registry.all_rules()
    return [m.code for m in metas] + [m.name for m in metas] + list(CATEGORIES) + _profiles()


def _complete_rule_list(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[Any]:
    """One rule key, or the last of a comma-separated list (``--select LK001,ST0``)."""
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    return [prefix + k for k in _rule_keys() if k.startswith(last)]


def _complete_rule(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """A rule's code (described by its name) or name (by its code), for ``explain``."""
    from click.shell_completion import CompletionItem

    from . import registry

    metas = registry.all_rules()
    return ([CompletionItem(m.code, help=m.name)
             for m in metas if m.code.startswith(incomplete.upper())]
            + [CompletionItem(m.name, help=m.code)
               for m in metas if m.name.startswith(incomplete)])


def _layouts() -> list[str]:
    from .discover import LAYOUTS

    return list(LAYOUTS)


def _profiles() -> list[str]:
    from . import registry

    return sorted({m.profile for m in registry.all_rules() if m.profile})


def _dialects() -> list[str]:
    from .dialects import known_dialects

    return known_dialects()


def _lint_formats() -> list[str]:
    from .api import LINT_FORMATS

    return list(LINT_FORMATS)


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command that reads migrations shares."""
    opts = [
        click.option("--config", "config_file", metavar="FILE",
                     help="Config file (default: [tool.sqlsafe] in the nearest pyproject.toml, "
                          "or .sqlsafe.toml)."),
        click.option("--pg-version", metavar="N[.M]",
                     help="Target PostgreSQL major version (default: 15, the oldest supported), "
                          "or release such as 14.3."),
        click.option("--dialect", metavar="NAME", shell_complete=_complete_from(_dialects),
                     help="SQL dialect (default postgres; others such as mysql or sqlite are "
                          "parsed with sqlglot and get the dialect-neutral rules)."),
        click.option("--layout", metavar="NAME", shell_complete=_complete_from(_layouts),
                     help="Force a migration layout (plain, prisma, supabase, flyway, "
                          "golang-migrate, popx, dbmate, goose, versioned-dirs)."),
        click.option("--assume-in-transaction/--no-assume-in-transaction", default=None,
                     help="Override whether each migration runs in one transaction."),
        click.option("--select", multiple=True, metavar="RULES",
                     shell_complete=_complete_rule_list,
                     help="Only these rules (codes, names, prefixes or categories; comma-separated)."),
        click.option("--extend-select", multiple=True, metavar="RULES",
                     shell_complete=_complete_rule_list, help="Add opt-in rules to the default set."),
        click.option("--ignore", multiple=True, metavar="RULES",
                     shell_complete=_complete_rule_list, help="Skip these rules."),
        click.option("--profile", "profiles", multiple=True, metavar="NAME",
                     shell_complete=_complete_from(_profiles),
                     help="Enable an opt-in rule profile (e.g. supabase)."),
        click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]),
                     help="Lowest severity that makes the exit code 1 (default: error)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def make_config(paths: tuple[str, ...], **opts: Any) -> Config:
    """The config in force for a command (``entry.make_config``); a bad one exits 2."""
    try:
        return entry.make_config(paths, **opts)
    except ConfigError as exc:
        fail(str(exc))


class _Group(click.Group):
    """A group whose heavier sub-commands (sqlsafe/commands/) load when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .commands import LAZY_COMMANDS

        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            from .commands import load

            command = load(cmd_name)
        return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sqlsafe")
def cli() -> None:
    """Keep database migrations from hurting production.

    \b
    sqlsafe lint PATH       static analysis (fast, no database)
    sqlsafe dry-run PATH    replay on a disposable PostgreSQL and observe locks, rewrites, timing
    sqlsafe check PATH      lint + dry run + dry_run_report.md + checksum.txt
    sqlsafe checksum PATH   write or verify checksum.txt
    sqlsafe rules           list the rules; sqlsafe explain CODE prints one
    sqlsafe lsp             language server for editors (pip install 'sqlsafe[lsp]')

    Exit codes: 0 clean, 1 findings at or above --fail-on (or a failed migration),
    2 the tool could not do its job.
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@common_options
@click.option("--format", "fmt", default=None, metavar="FORMAT",
              shell_complete=_complete_from(_lint_formats),
              help="text, json, sarif, github, gitlab, junit or markdown "
                   "(default: text; github under GitHub Actions).")
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True, help="Colour in text output (auto: only on a terminal).")
@click.option("--fix", is_flag=True, help="Apply the safe mechanical fixes in place.")
@click.option("--changed-since", metavar="REF",
              help="Report only migrations added or changed since a git ref "
                   "(earlier ones still build the schema state).")
@click.option("--baseline", metavar="FILE", help="Report only findings not in this baseline.")
@click.option("--write-baseline", metavar="FILE", help="Record today's findings as the baseline.")
def lint(paths: tuple[str, ...], fmt: str | None, output: str | None, color: str, fix: bool,
         changed_since: str | None, baseline: str | None, write_baseline: str | None,
         **opts: Any) -> None:
    """Static analysis of migration SQL. PATH may be a file, a directory or '-' (stdin)."""
    def out(text: str, color: bool) -> None:
        # click strips ANSI codes when stdout is not a terminal unless told otherwise.
        click.echo(text, nl=False, color=color or None)

    try:
        code = entry.lint_command(paths, fmt, output, color, fix, changed_since, baseline,
                                  write_baseline, out=out,
                                  err=lambda line: click.echo(line, err=True), **opts)
    except entry.CommandError as exc:
        fail(str(exc))
    sys.exit(code)


@cli.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("--all", "show_all", is_flag=True, help="Include the engine's own checks.")
def rules_cmd(fmt: str, show_all: bool) -> None:
    """List the rule catalogue: code, name, category, default severity."""
    from . import api

    click.echo(api.render_rules(fmt, show_all), nl=False)


@cli.command()
@click.argument("rule", shell_complete=_complete_rule)
def explain(rule: str) -> None:
    """Print a rule's page (what it does, why, examples, fix) — offline."""
    from . import api

    try:
        click.echo(api.explain(rule))
    except api.UsageError as exc:
        fail(str(exc))


def main() -> None:
    """Run the click command line (``entry.main`` sends every command line here but a plain
    ``lint`` one): no traceback ever reaches the user."""

    def run() -> int:
        try:
            cli.main(standalone_mode=False, prog_name="sqlsafe")
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code if isinstance(exc, ToolError) else EXIT_TOOL
        except click.exceptions.Abort:
            click.echo("sqlsafe: interrupted", err=True)
            return 130
        return EXIT_OK

    sys.exit(entry.run_guarded(run))
