"""Verification queries and the backout check against a real PostgreSQL (embedded engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlsafe._record import replace
from sqlsafe.discover import discover
from sqlsafe.dryrun.sandbox import Sandbox, SandboxError, open_sandbox
from sqlsafe.model import DiscoveryResult
from sqlsafe.report import plan, verify
from sqlsafe.report.build import relative_paths

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "fixtures" / "dlq_heartbeat" / "setup.sql"
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def migrated() -> Iterator[tuple[Sandbox, DiscoveryResult, str]]:
    disc = discover([str(REPO / "fixtures" / "dlq_heartbeat")])
    setup = (REPO / "fixtures" / "dlq_heartbeat" / "setup.sql").read_text()
    try:
        with open_sandbox("embedded") as sandbox:
            with sandbox.connect() as conn:
                conn.execute(setup)  # type: ignore[arg-type]
                for m in disc.migrations:
                    conn.execute(m.section.text)  # type: ignore[arg-type]
            yield sandbox, disc, setup
    except SandboxError as exc:
        pytest.skip(f"embedded PostgreSQL unavailable: {exc}")


def test_verification_queries_hold_on_the_migrated_database(migrated) -> None:  # type: ignore[no-untyped-def]
    sandbox, disc, _ = migrated
    queries = plan.verification_queries(disc, relative_paths(disc))
    assert queries
    with sandbox.connect() as conn:
        observed = verify.run_queries(conn, queries)
    assert [q.ok for q in observed] == [True] * len(queries), observed
    wrong = replace(queries[0], expected="2")
    with sandbox.connect() as conn:
        assert verify.run_queries(conn, [wrong])[0].ok is False


def test_generated_backout_restores_the_schema(migrated) -> None:  # type: ignore[no-untyped-def]
    sandbox, disc, _setup = migrated
    steps, _, _ = plan.backout(disc, relative_paths(disc))
    check = verify.check_backout(sandbox, disc, steps, setup_path=str(SETUP))
    assert check.status == "restored", check


def test_incomplete_backout_is_caught(migrated) -> None:  # type: ignore[no-untyped-def]
    sandbox, disc, _setup = migrated
    steps, _, _ = plan.backout(disc, relative_paths(disc))
    # Forget to drop the heartbeat column: the comparison must notice.
    steps[0] = replace(steps[0], sql=tuple(s for s in steps[0].sql if "DROP COLUMN" not in s))
    check = verify.check_backout(sandbox, disc, steps, setup_path=str(SETUP))
    assert check.status == "differs"
    assert any("last_heartbeat_at" in d for d in check.differences)
