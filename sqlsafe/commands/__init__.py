"""Sub-commands defined outside cli.py. Each module exposes ``command``; list it here."""

from __future__ import annotations

import click

# Filled after the imports below: the command modules import ``sqlsafe.cli`` (for the shared
# option stacks), which imports this package while it loads; the list must exist by then.
COMMANDS: list[click.Command] = []

from . import check, checksum, dryrun  # noqa: E402

COMMANDS += [check.command, checksum.command, dryrun.command]
