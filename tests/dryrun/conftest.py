"""Dry-run tests start real PostgreSQL servers; they carry the ``postgres`` marker."""

from __future__ import annotations

from typing import Any

import pytest
from dryrun_helpers import reset_public


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: starts or needs a real PostgreSQL server (slower; deselect with "
        "-m 'not postgres')"
    )


@pytest.fixture
def fresh(sandbox: Any) -> Any:
    """The module's ``sandbox`` with an empty public schema."""
    return reset_public(sandbox)
