"""Sub-commands defined outside cli.py, loaded only when they are asked for.

Each module exposes ``command``. ``sqlsafe lint`` (a pre-commit hook, run on every commit)
never pays for importing the dry-run, check and checksum commands.
"""

from __future__ import annotations

import importlib

import click

# command name -> module under sqlsafe.commands
LAZY_COMMANDS = {"check": "check", "checksum": "checksum", "dry-run": "dryrun", "lsp": "lsp"}


def load(name: str) -> click.Command | None:
    module = LAZY_COMMANDS.get(name)
    if module is None:
        return None
    command: click.Command = importlib.import_module(f"{__name__}.{module}").command
    return command
