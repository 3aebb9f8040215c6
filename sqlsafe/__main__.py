"""``python -m sqlsafe``."""

from __future__ import annotations

from sqlsafe.cli import main

main()
