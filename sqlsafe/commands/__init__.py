"""Sub-commands defined outside cli.py. Each module exposes ``command``; list it here."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
