"""Failure injection: interrupt a migration after each statement (and in the middle of a
CONCURRENTLY build), retry it from the top, compare with a clean run. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sqlsafe.dryrun.inject import inject_failures
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox
from sqlsafe.model import Migration, Section

pytestmark = pytest.mark.postgres

SETUP = "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL)"

UNGUARDED = """\
CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint NOT NULL);
CREATE INDEX invoices_account_idx ON invoices (account_id);
ALTER TABLE accounts ADD COLUMN plan text;
"""

GUARDED = """\
SET lock_timeout = '2s';
CREATE TABLE IF NOT EXISTS invoices (id bigint PRIMARY KEY, account_id bigint NOT NULL);
CREATE INDEX IF NOT EXISTS invoices_account_idx ON invoices (account_id);
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS plan text;
"""

# Guarded, and still unsafe: an interrupted build leaves an INVALID index that IF NOT EXISTS
# then keeps (PostHog#59096).
CONCURRENT = """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON accounts (email);
"""


def _m(name: str, text: str, in_transaction: bool = False) -> Migration:
    return Migration(name, None, "plain", None, name, Section(name, text),
                     in_transaction=in_transaction)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with open_sandbox("embedded") as sb:
        with sb.connect() as conn:
            conn.execute(SETUP)
        yield sb


def test_half_applied_unguarded_file_fails_its_retry(sandbox: Sandbox) -> None:
    (entries,) = inject_failures(sandbox, [_m("001.sql", UNGUARDED)]).values()
    assert [(e["after_statement"], e["line"], e["retry"]) for e in entries] == [
        (1, 1, "failed"), (2, 2, "failed")]
    assert entries[0]["error"] == 'line 1: relation "invoices" already exists'


def test_guarded_file_passes(sandbox: Sandbox) -> None:
    (entries,) = inject_failures(sandbox, [_m("001.sql", GUARDED)]).values()
    # After the SET there is nothing to interrupt; after each DDL the retry converges.
    assert [(e["after_statement"], e["retry"]) for e in entries] == [(2, "ok"), (3, "ok")]


def test_transaction_protects_a_wrapped_file(sandbox: Sandbox) -> None:
    (entries,) = inject_failures(sandbox, [_m("001.sql", UNGUARDED, True)]).values()
    assert [(e["after_statement"], e["retry"]) for e in entries] == [(3, "ok")]
    assert "one transaction" in entries[0]["note"]


def test_interrupted_concurrent_build_leaves_an_invalid_index(sandbox: Sandbox) -> None:
    result = inject_failures(sandbox, [_m("001.sql", GUARDED), _m("002.sql", CONCURRENT)])
    (entry,) = result[1]
    assert (entry["during_statement"], entry["line"], entry["retry"]) == (1, 1, "schema differs")
    assert entry["error"].startswith("index public.accounts_email_idx is INVALID")
