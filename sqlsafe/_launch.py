"""The first code the ``sqlsafe`` script and ``python -m sqlsafe`` run: Ctrl-C while the
command is still being imported.

``entry.main`` runs every command under ``run_guarded``, which turns a Ctrl-C into one line
and exit code 130. A Ctrl-C that arrives before that, while Python imports the command's
modules (a few tens of milliseconds), used to print the traceback of whatever import it
interrupted. Nothing has started by then (no server, temp dir or output file), so until
``main`` hands over, a Ctrl-C says so and leaves at once with 130. Only Python's own start-up,
before this module, is left unguarded. A SIGINT the parent set to be ignored stays ignored.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted(signum: int, frame: FrameType | None) -> None:
    try:
        sys.stderr.write("sqlsafe: interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(130)


_PREVIOUS = signal.getsignal(signal.SIGINT)
if _PREVIOUS is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)


def main() -> None:
    """Import the command, then give Ctrl-C back to Python (``run_guarded`` handles it)."""
    from .entry import main as entry_main

    if _PREVIOUS is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    entry_main()
