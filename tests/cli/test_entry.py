"""The entry point reads plain ``lint`` command lines without click (sqlsafe/entry.py).

Its option table must be the click command's, it must read every command line it accepts as
click does, leave every other one to click, and the two paths must answer alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from sqlsafe import entry
from sqlsafe.cli import cli

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "fixtures" / "dlq_heartbeat" / "migrations"


def _lint_command() -> click.Command:
    command = cli.commands["lint"]
    assert isinstance(command, click.Command)
    return command


def test_option_table_is_the_click_commands() -> None:
    values: dict[str, str] = {}
    multiple: dict[str, str] = {}
    flags: dict[str, tuple[str, bool]] = {}
    choices: dict[str, tuple[str, ...]] = {}
    for param in _lint_command().params:
        if not isinstance(param, click.Option):
            continue
        if param.name in ("help",):
            continue
        assert param.name is not None
        if isinstance(param.type, click.Choice):
            choices[param.name] = tuple(param.type.choices)
        if param.is_flag:
            if param.secondary_opts:  # --x/--no-x
                for opt in param.opts:
                    flags[opt] = (param.name, True)
                for opt in param.secondary_opts:
                    flags[opt] = (param.name, False)
            else:
                for opt in param.opts:
                    flags[opt] = (param.name, True)
        elif param.multiple:
            multiple.update(dict.fromkeys(param.opts, param.name))
        else:
            values.update(dict.fromkeys(param.opts, param.name))
    assert values == entry.VALUE_OPTIONS
    assert multiple == entry.MULTIPLE_OPTIONS
    assert flags == entry.FLAG_OPTIONS
    assert choices == entry.CHOICES
    defaults = _lint_command().make_context("lint", []).params
    assert defaults.pop("paths") == ()
    assert defaults == entry.DEFAULTS


ACCEPTED = [
    ["lint"],
    ["lint", "a.sql"],
    ["lint", "-", "--format", "json"],
    ["lint", "a.sql", "b/", "--format=json", "-o", "out.json"],
    ["lint", "--select", "LK001,LK002", "--select=ID001", "x", "--ignore", "style"],
    ["lint", "--fix", "--no-assume-in-transaction", "--assume-in-transaction", "x"],
    ["lint", "--fail-on", "never", "--color", "always", "--pg-version", "14.3", "x"],
    ["lint", "--format", "text", "--format", "json", "x"],  # the last one wins
    ["lint", "--output", "-", "x"],  # a value that looks like stdin is still a value
    ["lint", "--config", "c.toml", "--dialect", "mysql", "--layout", "flyway", "x"],
    ["lint", "--profile", "supabase", "--extend-select", "SC0", "--changed-since", "main",
     "--baseline", "b.json", "--write-baseline", "w.json", "x"],
    ["lint", "--select="],  # an empty value is a value
]

LEFT_TO_CLICK = [
    [],
    ["rules"],
    ["dry-run", "x"],
    ["--version"],
    ["lint", "--help"],
    ["lint", "-h"],
    ["lint", "--fail-on", "bogus", "x"],
    ["lint", "--color=sometimes"],
    ["lint", "--format"],  # no value
    ["lint", "--fix=yes"],
    ["lint", "-ofile.json", "x"],
    ["lint", "--", "-weird.sql"],
    ["lint", "--frmat", "json"],
    ["lint", "--sel", "LK001"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=lambda a: " ".join(a) or "empty")
def test_quick_parser_reads_what_click_reads(argv: list[str]) -> None:
    quick = entry.quick_lint_args(argv)
    assert quick is not None
    ctx = _lint_command().make_context("lint", list(argv[1:]))
    assert quick == ctx.params


@pytest.mark.parametrize("argv", LEFT_TO_CLICK, ids=lambda a: " ".join(a) or "empty")
def test_other_command_lines_go_to_click(argv: list[str]) -> None:
    assert entry.quick_lint_args(argv) is None


def _run(argv: list[str], *, via_click: bool, cwd: Path, stdin: str = "") -> tuple[int, str, str]:
    code = ("import sys; from sqlsafe.cli import main; sys.argv = ['sqlsafe', *sys.argv[1:]]; main()"
            if via_click else
            "import sys; from sqlsafe.entry import main; sys.argv = ['sqlsafe', *sys.argv[1:]]; "
            "main()")
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "NO_COLOR")}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          cwd=cwd, input=stdin, env=env)
    return proc.returncode, proc.stdout, proc.stderr


CASES = [
    ["lint", str(FIXTURE)],
    ["lint", str(FIXTURE), "--format", "json", "--fail-on", "never"],
    ["lint", str(FIXTURE), "--color", "always", "--select", "LK,TX"],
    ["lint", "-", "--format=json"],
    ["lint", "missing-dir", str(FIXTURE)],  # a one-line error for the path, the rest linted
    ["lint", str(FIXTURE), "--select", "NOPE999"],  # a usage error: exit 2
    ["lint", str(FIXTURE), "--pg-version", "banana"],  # a config error: exit 2
]


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(a[2:]) or "plain")
def test_both_paths_answer_alike(argv: list[str], tmp_path: Path) -> None:
    stdin = "CREATE INDEX i ON t (a);\nSELEC 1;\n"
    quick = _run(argv, via_click=False, cwd=tmp_path, stdin=stdin)
    slow = _run(argv, via_click=True, cwd=tmp_path, stdin=stdin)
    assert quick == slow
    assert "Traceback" not in quick[2]


def test_both_paths_write_the_same_report_file(tmp_path: Path) -> None:
    (tmp_path / "quick").mkdir()
    (tmp_path / "click").mkdir()
    argv = ["lint", str(FIXTURE), "--format", "sarif", "-o", "report.sarif"]
    quick = _run(argv, via_click=False, cwd=tmp_path / "quick")
    slow = _run(argv, via_click=True, cwd=tmp_path / "click")
    assert quick == slow
    written = (tmp_path / "quick" / "report.sarif").read_text(encoding="utf-8")
    assert '"ruleId"' in written
    assert written == (tmp_path / "click" / "report.sarif").read_text(encoding="utf-8")


def test_plain_lint_does_not_import_click() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sqlsafe", "lint", str(FIXTURE)],
        capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sqlsafe" in imported
    assert "click" not in imported
    # ... while a command line it leaves to click still works through the same entry point
    proc = subprocess.run([sys.executable, "-m", "sqlsafe", "lint", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert "Usage: sqlsafe lint" in proc.stdout


def test_random_command_lines_parse_alike() -> None:
    """Command lines put together at random from the lint command's own options, values
    that look like options, paths and stdin: wherever the quick parser accepts one, click
    reads the same parameters, and wherever click refuses one, the quick parser left it."""
    import random

    rng = random.Random(20261123)
    options = [*entry.VALUE_OPTIONS, *entry.MULTIPLE_OPTIONS, *entry.FLAG_OPTIONS]
    values = ["json", "never", "always", "auto", "LK001,TX", "-", "x.sql", "--fix", "",
              "error", "a=b", "15"]
    extras = ["a.sql", "dir/", "-", "--help", "--bogus", "-o", "--fix=1", "--format="]
    accepted = 0
    for _ in range(400):
        argv = ["lint"]
        for _ in range(rng.randint(0, 6)):
            kind = rng.random()
            if kind < 0.6:
                opt = rng.choice(options)
                if rng.random() < 0.3 and opt.startswith("--") and opt not in entry.FLAG_OPTIONS:
                    argv.append(f"{opt}={rng.choice(values)}")
                else:
                    argv.append(opt)
                    if opt not in entry.FLAG_OPTIONS and rng.random() < 0.9:
                        argv.append(rng.choice(values))
            else:
                argv.append(rng.choice(extras))
        quick = entry.quick_lint_args(argv)
        try:
            ctx = _lint_command().make_context("lint", list(argv[1:]))
        except (click.exceptions.Exit, click.UsageError):
            assert quick is None, argv
            continue
        if quick is not None:
            accepted += 1
            assert quick == ctx.params, argv
    assert accepted > 100  # the generator mostly makes lines the quick parser takes


def test_ctrl_c_while_the_command_loads_exits_quietly() -> None:
    # The script's first module guards the imports that follow it: a SIGINT then is one
    # line and exit code 130, not the traceback of the interrupted import.
    code = ("import os, signal, time\nimport sqlsafe._launch\n"
            "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\nprint('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 130, proc
    assert proc.stderr == "sqlsafe: interrupted\n" and proc.stdout == ""


def test_after_loading_ctrl_c_is_the_commands_own() -> None:
    # Once the command is imported, Python's handler is back: KeyboardInterrupt reaches
    # ``run_guarded`` (and whatever cleans up a dry run's server) as before.
    code = ("import signal, sys\nimport sqlsafe._launch as launch\n"
            "import sqlsafe.entry as entry\n"
            "entry.main = lambda: sys.exit(signal.getsignal(signal.SIGINT) is "
            "signal.default_int_handler and 7)\nlaunch.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 7, proc


def test_the_script_and_python_m_start_in_the_guard() -> None:
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sqlsafe"] == "sqlsafe._launch:main"
    main_module = (REPO / "sqlsafe" / "__main__.py").read_text()
    first_import = next(line for line in main_module.splitlines()
                        if line.startswith(("import ", "from ")) and "__future__" not in line)
    assert first_import.startswith("from ._launch import")
