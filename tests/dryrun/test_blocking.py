"""Measured blocking: a second session probes reads and writes while a statement holds locks.

CREATE INDEX takes SHARE: writes wait, reads don't. CREATE INDEX CONCURRENTLY takes SHARE UPDATE
EXCLUSIVE: neither waits. Real PostgreSQL, never mocks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from sqlsafe.dryrun.blocking import Prober, compare, predicted, probe_during
from sqlsafe.dryrun.result import ObservedLock
from sqlsafe.dryrun.sampledata import fill
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with open_sandbox("embedded") as sb:
        with sb.connect() as conn:
            conn.execute("CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                         "status text NOT NULL, owner_id int, created_at timestamptz NOT NULL)")
            fill(conn, 20_000)
        yield sb


def _by_operation(probes: tuple) -> dict[str, bool]:
    return {b.operation: b.blocked for b in probes}


def test_create_index_blocks_a_write_not_a_read(sandbox: Sandbox) -> None:
    with sandbox.connect(autocommit=False) as migration, Prober(sandbox.connect()) as prober:
        migration.execute("CREATE INDEX jobs_status_idx ON jobs (status)")
        # Inside the migration's transaction: the SHARE lock is held until COMMIT.
        probes = prober.probe([("public.jobs", "r")])
        migration.rollback()
    assert _by_operation(probes) == {"read": False, "write": True}
    write = next(b for b in probes if b.operation == "write")
    assert write.waited_ms >= 40  # it waited for lock_timeout (50 ms), then gave up
    assert predicted("ShareLock") == {"read": False, "write": True}
    assert compare(probes, [ObservedLock("public.jobs", "ShareLock")]) == []


def test_create_index_concurrently_blocks_neither(sandbox: Sandbox) -> None:
    # CIC waits for transactions holding snapshots older than its own before it finishes: a
    # REPEATABLE READ transaction in a third session keeps it running (SHARE UPDATE EXCLUSIVE
    # held) long enough to probe, whatever the machine's speed.
    holder = sandbox.connect(autocommit=False)
    holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    holder.execute("SELECT 1 FROM jobs LIMIT 1")
    release = threading.Timer(1.0, holder.commit)
    with sandbox.connect() as migration, Prober(sandbox.connect()) as prober:
        pid = migration.info.backend_pid
        release.start()
        try:
            _, probes = probe_during(
                prober, lambda: migration.execute(
                    "CREATE INDEX CONCURRENTLY jobs_created_idx ON jobs (created_at)"),
                pid, [("public.jobs", "r")])
        finally:
            release.join()
            holder.close()
        migration.execute("DROP INDEX jobs_created_idx")
    assert _by_operation(probes) == {"read": False, "write": False}
    assert compare(probes, [ObservedLock("public.jobs", "ShareUpdateExclusiveLock")]) == []


def test_access_exclusive_blocks_both_and_compare_flags_a_contradiction(sandbox: Sandbox) -> None:
    with sandbox.connect(autocommit=False) as migration, Prober(sandbox.connect()) as prober:
        migration.execute("ALTER TABLE jobs ADD COLUMN note text")
        probes = prober.probe(["public.jobs"])
        migration.rollback()
    assert _by_operation(probes) == {"read": True, "write": True}
    # Told the lock was only SHARE, the measurement contradicts it for the read.
    assert compare(probes, [ObservedLock("public.jobs", "ShareLock")]) == [
        "SHARE on public.jobs blocked a read; the lock table predicts no blocking"]


def test_replay_records_measured_blocking_per_statement(sandbox: Sandbox) -> None:
    from sqlsafe.config import Config
    from sqlsafe.dryrun.replay import dry_run
    from sqlsafe.model import DiscoveryResult, Migration, Section

    def m(name: str, sql: str, in_tx: bool) -> Migration:
        return Migration(name, None, "plain", None, name, Section(name, sql), in_transaction=in_tx)

    disc = DiscoveryResult((m("1.sql", "CREATE INDEX jobs_owner_idx ON jobs (owner_id);\n", True),
                            m("2.sql", "CREATE INDEX CONCURRENTLY jobs_status2_idx ON jobs "
                                       "(status, created_at);\n", False)))
    result = dry_run(disc, Config(), sandbox=sandbox, check_idempotency=False,
                     check_down=False, measure_blocking=True)
    plain, concurrent = (mig.statements[0] for mig in result.migrations)
    assert _by_operation(plain.blocking) == {"read": False, "write": True}
    assert plain.to_json()["blocking"][1] == {"relation": "public.jobs", "operation": "write",
                                              "blocked": True,
                                              "waited_ms": plain.to_json()["blocking"][1]
                                              ["waited_ms"]}
    # A CONCURRENTLY build is probed while it runs; on 20k rows it may finish first, and then
    # nothing is recorded — but whatever is recorded was not blocked.
    assert not any(b.blocked for b in concurrent.blocking)


def test_lock_queue_behind_a_running_query_is_measured(sandbox: Sandbox) -> None:
    # An ACCESS EXCLUSIVE statement waits behind a query that reads the table, and while it
    # waits a new read queues behind it: one slow query and one ALTER close the table. The
    # replay stands a query in, measures that, and lets the statement go.
    from sqlsafe.config import Config
    from sqlsafe.dryrun.replay import dry_run
    from sqlsafe.lint import lint
    from sqlsafe.model import DiscoveryResult, Migration, Section

    def m(name: str, sql: str, in_tx: bool) -> Migration:
        return Migration(name, None, "plain", None, name, Section(name, sql), in_transaction=in_tx)

    disc = DiscoveryResult((
        m("1.sql", "ALTER TABLE jobs ADD COLUMN q1 int;\n", False),
        m("2.sql", "CREATE INDEX jobs_q_idx ON jobs (owner_id);\n", False),
        # The migration's own lock_timeout: a stand-in query must not make it fail.
        m("3.sql", "SET lock_timeout = '100ms';\nALTER TABLE jobs ADD COLUMN q3 int;\n"
                   "RESET lock_timeout;\n", False),
        # ACCESS EXCLUSIVE already held by the transaction: nothing to wait behind.
        m("4.sql", "ALTER TABLE jobs ADD COLUMN q4 int;\nALTER TABLE jobs ADD COLUMN q5 int;\n",
          True),
    ))
    config = Config()
    try:
        result = dry_run(disc, config, sandbox=sandbox, lint_result=lint(disc, config),
                         check_idempotency=False, check_down=False, measure_blocking=True)
        assert [mig.status for mig in result.migrations] == ["applied"] * 4
        alter, index, timed, first, second = (
            result.migrations[0].statements[0], result.migrations[1].statements[0],
            result.migrations[2].statements[1], *result.migrations[3].statements)
        assert alter.lock_queue is not None
        assert alter.lock_queue.relation == "public.jobs" and alter.lock_queue.read_blocked
        assert alter.lock_queue.waited_ms > 0
        assert alter.to_json()["lock_queue"]["read_blocked"] is True
        assert index.lock_queue is None  # SHARE: a reading query does not hold it up
        assert timed.lock_queue is None
        assert first.lock_queue is not None and second.lock_queue is None
    finally:
        with sandbox.connect() as conn:
            conn.execute("ALTER TABLE jobs DROP COLUMN IF EXISTS q1, DROP COLUMN IF EXISTS q3, "
                         "DROP COLUMN IF EXISTS q4, DROP COLUMN IF EXISTS q5")
            conn.execute("DROP INDEX IF EXISTS jobs_q_idx")
