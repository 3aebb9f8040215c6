"""Dry-run tests start real PostgreSQL servers; they carry the ``postgres`` marker."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: starts or needs a real PostgreSQL server (slower; deselect with "
        "-m 'not postgres')"
    )
