"""Golden-file comparison shared by the report tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sqlsafe.report.refresh import normalize

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SQLSAFE_UPDATE_REPORTS") == "1"


def assert_golden(text: str, name: str) -> None:
    """``text`` equals ``golden/<name>`` with durations, versions and estimates normalized;
    SQLSAFE_UPDATE_REPORTS=1 rewrites the file instead."""
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{path} was missing and has been written; re-run")
    assert normalize(text) == normalize(path.read_text(encoding="utf-8")), (
        f"{path} is out of date: SQLSAFE_UPDATE_REPORTS=1 pytest tests/report")
