"""The suppression engine: one syntax, a reason required, stale and unknown ones reported."""

from __future__ import annotations

import datetime as dt

from helpers import migrations

from sqlsafe.config import Config
from sqlsafe.lint import lint
from sqlsafe.model import Finding

SETUP = "CREATE TABLE t (id bigint PRIMARY KEY, a text);"
BAD = "UPDATE t SET a = 'x';"  # BF005 on an existing table


def _codes(sql: str, **config: object) -> list[tuple[str, int]]:
    cfg = Config(select=("BF005",), **config)  # type: ignore[arg-type]
    findings: tuple[Finding, ...] = lint(migrations(SETUP, sql), cfg).findings
    return sorted((f.code, f.span.line) for f in findings if f.path == "001_m.sql")


def test_unsuppressed_finding_err() -> None:
    assert _codes(BAD) == [("BF005", 1)]


def test_comment_before_statement_ok() -> None:
    assert _codes(f'-- sqlsafe: ignore BF005 reason="t has 12 rows"\n{BAD}') == []


def test_rule_name_ok() -> None:
    assert _codes(f'-- sqlsafe: ignore unbatched-backfill reason="tiny"\n{BAD}') == []


def test_category_ok() -> None:
    assert _codes(f'-- sqlsafe: ignore backfill reason="tiny"\n{BAD}') == []


def test_trailing_comment_ok() -> None:
    assert _codes(f'{BAD} -- sqlsafe: ignore BF005 reason="tiny"') == []


def test_trailing_comment_on_last_line_of_multiline_statement_ok() -> None:
    assert _codes("UPDATE t\nSET a = 'x'; -- sqlsafe: ignore BF005 reason=\"tiny\"") == []


def test_block_comment_form_ok() -> None:
    assert _codes(f'/* sqlsafe: ignore BF005 reason="tiny" */\n{BAD}') == []


def test_single_quoted_and_bare_reason_ok() -> None:
    assert _codes(f"-- sqlsafe: ignore BF005 reason='tiny'\n{BAD}") == []
    assert _codes(f"-- sqlsafe: ignore BF005 reason=tiny table\n{BAD}") == []


def test_suppression_covers_only_the_next_statement_err() -> None:
    sql = f'-- sqlsafe: ignore BF005 reason="tiny"\n{BAD}\n{BAD}'
    assert _codes(sql) == [("BF005", 3)]


def test_ignore_file_ok() -> None:
    sql = f'-- sqlsafe: ignore-file BF005 reason="scratch data"\n{BAD}\n{BAD}'
    assert _codes(sql) == []


def test_ignore_without_rules_suppresses_all_ok() -> None:
    assert _codes(f'-- sqlsafe: ignore reason="reviewed"\n{BAD}') == []


def test_reason_required_err() -> None:
    # ST903, and the finding stays: a suppression without a reason suppresses nothing.
    assert _codes(f"-- sqlsafe: ignore BF005\n{BAD}") == [("BF005", 2), ("ST903", 1)]


def test_unknown_rule_err() -> None:
    assert _codes(f'-- sqlsafe: ignore BF05 reason="typo"\n{BAD}') == [("BF005", 2), ("ST902", 1)]


def test_unused_suppression_err() -> None:
    sql = '-- sqlsafe: ignore BF005 reason="tiny"\nUPDATE t SET a = \'x\' WHERE id = 1;'
    assert _codes(sql) == [("ST901", 1)]


def test_suppression_of_other_rule_does_not_hide_err() -> None:
    assert _codes(f'-- sqlsafe: ignore DS001 reason="x"\n{BAD}') == [("BF005", 2), ("ST901", 1)]


def test_expired_err() -> None:
    sql = f'-- sqlsafe: ignore BF005 reason="until backfill" until=2020-01-01\n{BAD}'
    assert _codes(sql) == [("BF005", 2), ("ST904", 1)]


def test_not_yet_expired_ok() -> None:
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    assert _codes(f'-- sqlsafe: ignore BF005 reason="for now" until={later}\n{BAD}') == []


def test_engine_findings_can_be_ignored_ok() -> None:
    sql = f"-- sqlsafe: ignore BF005\n{BAD}"
    assert _codes(sql, ignore=("ST903",)) == [("BF005", 2)]


def test_syntax_error_can_be_suppressed_ok() -> None:
    sql = '-- sqlsafe: ignore SX001 reason="rendered by the template engine"\nCREATE TABLE ( ;'
    assert _codes(sql) == []


def test_noqa_spelling_ok() -> None:
    assert _codes(f'{BAD} -- noqa: sqlsafe-BF005 reason="tiny"') == []
    assert _codes(f'-- noqa: sqlsafe-unbatched-backfill, L010 reason="tiny"\n{BAD}') == []
    assert _codes(f'/* noqa: sqlsafe reason="tiny" */ {BAD}') == []  # every rule


def test_noqa_needs_a_reason_and_ignores_other_tools() -> None:
    # Without a reason it suppresses nothing and is reported, like the sqlsafe: spelling.
    assert _codes(f"{BAD} -- noqa: sqlsafe-BF005", extend_select=("ST903",)) == \
        [("BF005", 1), ("ST903", 1)]
    assert _codes(f'{BAD} -- noqa: L010, PRS reason="sqlfluff"') == [("BF005", 1)]
    # Unused, it is reported like any unused suppression.
    assert _codes('SELECT 1; -- noqa: sqlsafe-BF005 reason="tiny"',
                  extend_select=("ST901",)) == [("ST901", 1)]
