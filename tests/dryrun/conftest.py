"""Dry-run tests start real PostgreSQL servers; they carry the ``postgres`` marker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dryrun_helpers import LOCAL_MAJOR, needs_local, reset_public

from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: starts or needs a real PostgreSQL server (slower; deselect with "
        "-m 'not postgres')"
    )


@pytest.fixture
def fresh(sandbox: Any) -> Any:
    """The module's ``sandbox`` with an empty public schema."""
    return reset_public(sandbox)


@pytest.fixture(scope="module", params=[
    pytest.param(("embedded", None), id="pg18"),
    pytest.param(("local", LOCAL_MAJOR), id="pg15", marks=needs_local()),
])
def each_major(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox of each major the test machines have: the embedded 18 and Debian's 15."""
    engine, version = request.param
    with open_sandbox(engine, pg_version=version) as sb:
        yield sb
