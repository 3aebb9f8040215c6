"""Discovery: every layout in its owning tool's order, downs paired, bad input reported."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from sqlsafe import discover as discover_mod
from sqlsafe.discover import LAYOUTS, discover
from sqlsafe.model import DiscoveryResult, Migration
from sqlsafe.parse import count_statements

REPO = Path(__file__).resolve().parents[2]
LAYOUT_DIR = REPO / "fixtures" / "layouts"


def run(*parts: str, **kw: object) -> DiscoveryResult:
    return discover([str(LAYOUT_DIR.joinpath(*parts))], **kw)  # type: ignore[arg-type]


def names(result: DiscoveryResult) -> list[str]:
    return [os.path.basename(m.path) for m in result.migrations]


def clean(result: DiscoveryResult) -> DiscoveryResult:
    assert result.problems == ()
    return result


def file_line(m: Migration, needle: str) -> int:
    """1-based line in the *file* of ``needle``, computed through the section's offset."""
    return m.section.line_offset + m.section.text[: m.section.text.index(needle)].count("\n") + 1


# --- layouts ----------------------------------------------------------------------------------
def test_plain_natural_order_ok() -> None:
    r = clean(run("plain"))
    assert names(r) == [
        "1_create_accounts.sql",
        "2_accounts_display_name.sql",
        "10_accounts_status.sql",
    ]
    assert {m.layout for m in r.migrations} == {"plain"}
    assert [m.version for m in r.migrations] == ["1", "2", "10"]
    assert r.migrations[0].name == "create_accounts"
    assert not any(m.in_transaction for m in r.migrations)
    assert all(m.down is None for m in r.migrations)


def test_display_paths_join_the_argument_ok() -> None:
    arg = str(LAYOUT_DIR / "plain")
    r = discover([arg])
    assert r.root == os.path.normpath(arg)
    assert r.migrations[0].path == os.path.join(arg, "1_create_accounts.sql")
    assert r.migrations[0].abspath == str(LAYOUT_DIR / "plain" / "1_create_accounts.sql")
    # relpath against root is the name below the root (what checksum.txt records)
    assert os.path.relpath(r.migrations[0].path, r.root) == "1_create_accounts.sql"


def test_relative_argument_keeps_its_spelling_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    r = discover(["fixtures/layouts/plain/"])
    assert r.root == "fixtures/layouts/plain"
    assert r.migrations[0].path == "fixtures/layouts/plain/1_create_accounts.sql"
    monkeypatch.chdir(LAYOUT_DIR / "plain")
    assert discover(["."]).migrations[0].path == "1_create_accounts.sql"


def test_non_ascii_text_kept_exact_ok() -> None:
    m = clean(run("plain")).migrations[1]
    raw = Path(m.abspath or "").read_bytes()
    assert m.section.text == raw.decode("utf-8")
    assert m.sha256 == hashlib.sha256(raw).hexdigest()
    # after "/* é ü 日本 */" the statement starts at column 14 of line 3: columns count
    # characters, not bytes
    line = m.section.text.splitlines()[2]
    assert line.index("CREATE") + 1 == 14


@pytest.mark.parametrize(
    "arg", [("prisma",), ("prisma", "prisma"), ("prisma", "prisma", "migrations")]
)
def test_prisma_ok(arg: tuple[str, ...]) -> None:
    r = clean(run(*arg))
    dirs = [os.path.basename(os.path.dirname(m.path)) for m in r.migrations]
    assert dirs == [
        "20240105093000_init",
        "20240212141500_add_orders",
        "20240301080000_orders_customer_index",
    ]
    assert all(m.layout == "prisma" for m in r.migrations)
    assert [m.in_transaction for m in r.migrations] == [
        count_statements(m.section.text) > 1 for m in r.migrations]
    assert any(m.in_transaction for m in r.migrations)
    assert r.migrations[1].version == "20240212141500"
    assert r.migrations[1].name == "add_orders"


def test_supabase_ok() -> None:
    r = clean(run("supabase"))
    assert names(r) == ["20240301120000_profiles.sql", "20240315090000_profiles_username_index.sql"]
    assert all(m.layout == "supabase" and m.in_transaction for m in r.migrations)


def test_flyway_version_order_undo_and_repeatables_ok() -> None:
    r = clean(run("flyway"))
    assert names(r) == [
        "V1__create_customers.sql",
        "V1_1__customers_email_index.sql",
        "V2__create_invoices.sql",
        "V10__invoices_currency.sql",
        "R__active_customers_view.sql",
        "R__customer_totals_view.sql",
    ]
    assert [m.version for m in r.migrations[:4]] == ["1", "1.1", "2", "10"]
    assert [m.kind for m in r.migrations] == ["versioned"] * 4 + ["repeatable"] * 2
    assert all(m.layout == "flyway" and m.in_transaction for m in r.migrations)
    undo = r.migrations[1].down
    assert undo is not None and undo.path.endswith("U1_1__customers_email_index.sql")
    assert undo.section.text == "DROP INDEX customers_email_idx;\n"
    assert all(m.down is None for i, m in enumerate(r.migrations) if i != 1)


def test_flyway_conf_execute_in_transaction_false_ok(tmp_path: Path) -> None:
    (tmp_path / "V1__idx.sql").write_text("CREATE INDEX CONCURRENTLY i ON t (a);\n")
    (tmp_path / "V1__idx.sql.conf").write_text("executeInTransaction=false\n")
    (tmp_path / "V2__t.sql").write_text("SELECT 1;\n")
    r = clean(discover([str(tmp_path)]))
    assert [m.in_transaction for m in r.migrations] == [False, True]


@pytest.mark.parametrize(("text", "wrapped"), [
    # Flyway runs a script outside a transaction when its statements need that ...
    ("CREATE INDEX CONCURRENTLY i ON t (a);\n", False),
    ("-- why\ncreate unique index\n  concurrently i ON t (a);\nDROP INDEX CONCURRENTLY j;\n", False),
    ("VACUUM (ANALYZE) t;\n", False),
    ("ALTER SYSTEM SET work_mem = '64MB';\n", False),
    ("CREATE DATABASE reports;\n", False),
    # ... but not for statements its list does not name (PostgreSQL then refuses, TX001) ...
    ("REINDEX TABLE CONCURRENTLY t;\n", True),
    ("CREATE INDEX i ON t (a); -- not concurrently\n", True),
    ("ALTER TYPE mood ADD VALUE 'meh';\n", True),  # on its list before PostgreSQL 12 only
    # ... and it refuses a script that mixes both (noted; modelled as wrapped).
    ("ALTER TABLE t ADD COLUMN c int;\nCREATE INDEX CONCURRENTLY i ON t (c);\n", True),
])
def test_flyway_runs_non_transactional_scripts_outside_a_transaction(
        tmp_path: Path, text: str, wrapped: bool) -> None:
    (tmp_path / "V1__x.sql").write_text(text)
    r = discover([str(tmp_path)])
    (m,) = r.migrations
    assert (m.layout, m.in_transaction) == ("flyway", wrapped)
    mixed = "ADD COLUMN" in text
    assert any("Flyway refuses" in note for note in r.notes) == mixed


def test_flyway_duplicate_version_err(tmp_path: Path) -> None:
    (tmp_path / "V1_0__a.sql").write_text("SELECT 1;\n")
    (tmp_path / "V1__b.sql").write_text("SELECT 2;\n")
    r = discover([str(tmp_path)])
    assert len(r.migrations) == 1
    assert len(r.problems) == 1 and "duplicate" in r.problems[0].message
    # ... naming the script it collides with
    assert r.problems[0].path.endswith("V1__b.sql") and "V1_0__a.sql" in r.problems[0].message


def test_golang_migrate_ok() -> None:
    r = clean(run("golang-migrate"))
    assert names(r) == [
        "1_create_users.up.sql",
        "2_users_email_index.up.sql",
        "10_users_last_login.up.sql",
    ]
    assert all(m.layout == "golang-migrate" for m in r.migrations)
    # one multi-statement query is an implicit transaction; a single statement runs alone
    assert [m.in_transaction for m in r.migrations] == [False, False, True]
    downs = [m.down for m in r.migrations]
    assert downs[0] is not None and downs[0].section.text == "DROP TABLE IF EXISTS users;\n"
    assert downs[1] is not None and downs[1].path.endswith("2_users_email_index.down.sql")
    assert downs[2] is None


def test_popx_dialects_and_autocommit_ok() -> None:
    r = clean(run("popx"))
    assert names(r) == [
        "20240101000000000000_identities.postgres.up.sql",
        "20240201000000000000_identities_created_at_idx.autocommit.up.sql",
    ]
    assert [m.layout for m in r.migrations] == ["popx", "popx"]
    assert [m.in_transaction for m in r.migrations] == [True, False]
    first = r.migrations[0].down
    assert first is not None and first.path.endswith("identities.postgres.down.sql")
    second = r.migrations[1].down
    assert second is not None and "DROP INDEX CONCURRENTLY" in second.section.text
    skipped = " ".join(r.notes)
    for f in ("identities.mysql.up.sql", "identities.up.sql", "identities.down.sql"):
        assert f"20240101000000000000_{f}" in skipped


def test_dbmate_sections_ok() -> None:
    r = clean(run("dbmate"))
    assert names(r) == ["20240110100000_create_teams.sql", "20240120100000_teams_slug_index.sql"]
    assert [m.in_transaction for m in r.migrations] == [True, False]
    first, second = r.migrations
    lines = Path(first.abspath or "").read_text().splitlines()
    assert file_line(first, "create table teams") == lines.index("create table teams (") + 1 == 2
    assert "migrate:" not in first.section.text
    assert first.down is not None and first.down.section.text.strip() == "drop table teams;"
    assert file_line(second, "create index concurrently") == 3
    # char_offset places the section in the file text
    text = Path(second.abspath or "").read_text()
    assert text[second.section.char_offset :].startswith(second.section.text)
    assert second.down is not None and file_line(second.down, "drop index") == 6  # type: ignore[arg-type]


def test_goose_sections_ok() -> None:
    r = clean(run("goose"))
    assert names(r) == ["00001_create_events.sql", "00002_events_kind_index.sql"]
    assert [m.in_transaction for m in r.migrations] == [True, False]
    first = r.migrations[0]
    assert file_line(first, "CREATE TABLE events") == 2
    assert "-- +goose StatementBegin" in first.section.text  # markers stay; the parser skips them
    assert "-- +goose Down" not in first.section.text
    assert first.down is not None and first.down.section.text.startswith("DROP FUNCTION")
    assert file_line(r.migrations[1], "CREATE INDEX CONCURRENTLY") == 3


def test_versioned_dirs_ok() -> None:
    r = clean(run("versioned-dirs"))
    rel = [os.path.relpath(m.path, r.root) for m in r.migrations]
    assert rel == [
        "versioned/v1.0/schema.sql",
        "versioned/v1.2/queue.sql",  # manifest order, not name order
        "versioned/v1.2/add_queue_index.sql",
        "versioned/v1.10/namespace_version.sql",
    ]
    assert [m.version for m in r.migrations] == ["1.0", "1.2", "1.2", "1.10"]
    assert all(m.layout == "versioned-dirs" for m in r.migrations)


def test_every_layout_fixture_exists_ok() -> None:
    for layout in LAYOUTS:
        assert discover([str(LAYOUT_DIR / layout)]).migrations, layout


def test_forced_layout_ok() -> None:
    r = run("golang-migrate", layout="plain")
    assert {m.layout for m in r.migrations} == {"plain"}


def test_unknown_layout_err() -> None:
    r = run("plain", layout="rails")
    assert r.migrations == () and "unknown layout" in r.problems[0].message


def test_assume_in_transaction_override_ok() -> None:
    assert all(m.in_transaction for m in run("plain", assume_in_transaction=True).migrations)
    assert not any(m.in_transaction for m in run("flyway", assume_in_transaction=False).migrations)


def test_several_paths_in_argument_order_ok() -> None:
    r = discover([str(LAYOUT_DIR / "supabase"), str(LAYOUT_DIR / "plain")])
    assert [m.layout for m in r.migrations] == ["supabase"] * 2 + ["plain"] * 3
    assert r.root == "."


# --- single files and stdin -------------------------------------------------------------------
def test_single_files_detected_by_name_and_content_ok() -> None:
    cases = {
        ("flyway", "V10__invoices_currency.sql"): "flyway",
        ("golang-migrate", "1_create_users.up.sql"): "golang-migrate",
        ("dbmate", "20240110100000_create_teams.sql"): "dbmate",
        ("goose", "00002_events_kind_index.sql"): "goose",
        ("plain", "10_accounts_status.sql"): "file",
    }
    for parts, layout in cases.items():
        r = clean(run(*parts))
        assert [m.layout for m in r.migrations] == [layout], parts
    assert run("plain", "10_accounts_status.sql").root == str(LAYOUT_DIR / "plain")


def test_down_file_alone_is_not_an_up_ok() -> None:
    r = clean(run("golang-migrate", "1_create_users.down.sql"))
    assert r.migrations == ()
    assert any("1_create_users.down.sql" in n for n in r.notes)


def test_up_and_down_given_as_files_are_paired_ok() -> None:
    d = LAYOUT_DIR / "golang-migrate"
    r = clean(discover([str(d / "1_create_users.up.sql"), str(d / "1_create_users.down.sql")]))
    assert len(r.migrations) == 1
    assert r.migrations[0].down is not None


def test_stdin_ok() -> None:
    r = clean(discover(["-"], stdin_text="\ufeffSELECT 1;\r\n"))
    (m,) = r.migrations
    assert (m.path, m.layout, m.abspath, m.in_transaction) == ("<stdin>", "stdin", None, False)
    assert m.section.text == "SELECT 1;\r\n"  # BOM stripped, CRLF kept


def test_stdin_without_text_err() -> None:
    r = discover(["-"])
    assert r.migrations == () and r.problems[0].path == "<stdin>"


def test_same_file_twice_listed_once_ok() -> None:
    d = LAYOUT_DIR / "plain"
    r = discover([str(d), str(d / "1_create_accounts.sql")])
    assert len(r.migrations) == 3
    assert any("more than once" in n for n in r.notes)


# --- bad input --------------------------------------------------------------------------------
def test_missing_path_err(tmp_path: Path) -> None:
    r = discover([str(tmp_path / "nope"), str(LAYOUT_DIR / "plain")])
    assert len(r.migrations) == 3
    assert r.problems[0].path == str(tmp_path / "nope")
    assert "no such file" in r.problems[0].message


def test_empty_dir_err(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not sql\n")
    r = discover([str(tmp_path)])
    assert r.migrations == ()
    assert [p.message for p in r.problems] == ["no migration files found"]


def test_binary_file_err(tmp_path: Path) -> None:
    (tmp_path / "1_ok.sql").write_text("SELECT 1;\n")
    (tmp_path / "2_bin.sql").write_bytes(b"SELECT 1;\nab\x00\x01\x02")
    r = discover([str(tmp_path)])
    assert names(r) == ["1_ok.sql"]
    (p,) = r.problems
    assert p.path.endswith("2_bin.sql") and "NUL" in p.message and (p.line, p.column) == (2, 3)


def test_non_utf8_position_named_err(tmp_path: Path) -> None:
    # "é" is two bytes in UTF-8 but one column; the bad Latin-1 byte is the 4th character of line 2
    (tmp_path / "1_latin1.sql").write_bytes("SELECT 1;\n-- é".encode() + b"\xe9t\xe9\n")
    r = discover([str(tmp_path)])
    assert r.migrations == ()
    (p,) = r.problems
    assert (p.line, p.column) == (2, 5)
    assert "UTF-8" in p.message and "0xe9" in p.message and "offset 15" in p.message


def test_utf8_bom_stripped_crlf_kept_ok(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n"
    (tmp_path / "1_bom.sql").write_bytes(raw)
    (m,) = clean(discover([str(tmp_path)])).migrations
    assert m.section.text == "SELECT 1;\r\nSELECT 2;\r\n"
    assert m.sha256 == hashlib.sha256(raw).hexdigest()  # digest of the raw bytes, BOM included


def test_digest_is_of_the_raw_bytes_of_the_whole_file(tmp_path: Path) -> None:
    # The digest is worked out from the text when asked: it must still be the file's bytes,
    # whatever the text holds, and the whole file's for each section of a dbmate file.
    files = {
        "1_plain.sql": b"CREATE TABLE t (a int);\n",
        "2_accents.sql": "-- café, naïve, 日本, \U0001f600\r\nSELECT 'é';".encode(),
        "3_bom_accents.sql": b"\xef\xbb\xbf" + "SELECT 'ü';\n".encode(),
    }
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
    got = {Path(m.path).name: m.sha256 for m in clean(discover([str(tmp_path)])).migrations}
    assert got == {name: hashlib.sha256(raw).hexdigest() for name, raw in files.items()}
    dbmate = tmp_path / "dbmate"
    dbmate.mkdir()
    raw = b"-- migrate:up\nCREATE TABLE u (a int);\n-- migrate:down\nDROP TABLE u;\n"
    (dbmate / "20240101000000_u.sql").write_bytes(raw)
    (m,) = clean(discover([str(dbmate)])).migrations
    assert m.section.text != raw.decode()
    assert m.sha256 == hashlib.sha256(raw).hexdigest()
    (s,) = clean(discover(["-"], stdin_text="\ufeffSELECT 'ß';\n")).migrations
    assert s.sha256 == hashlib.sha256("\ufeffSELECT 'ß';\n".encode()).hexdigest()


def test_empty_file_reported_ok(tmp_path: Path) -> None:
    (tmp_path / "1_empty.sql").write_text("")
    (tmp_path / "2_blank.sql").write_text("  \n\n")
    r = clean(discover([str(tmp_path)]))
    assert len(r.migrations) == 2
    assert sum("empty" in n for n in r.notes) == 2
    r = clean(discover([str(tmp_path / "1_empty.sql")]))
    assert any("empty" in n for n in r.notes)


def test_oversize_file_err(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discover_mod, "MAX_FILE_BYTES", 100)
    (tmp_path / "1_small.sql").write_text("SELECT 1;\n")
    (tmp_path / "2_big.sql").write_text("SELECT 1;\n" * 20)
    r = discover([str(tmp_path)])
    assert names(r) == ["1_small.sql"]
    (p,) = r.problems
    assert p.path.endswith("2_big.sql") and "limit" in p.message


def test_real_100mb_file_is_not_read_err(tmp_path: Path) -> None:
    big = tmp_path / "1_big.sql"
    line = b"SELECT 1;\n" * 100_000  # 1 MB
    started = time.monotonic()
    with big.open("wb") as f:
        for _ in range(101):
            f.write(line)
    if time.monotonic() - started > 2:
        pytest.skip("disk too slow to write 100 MB quickly; the monkeypatched test covers this")
    t0 = time.monotonic()
    r = discover([str(big)])
    assert r.migrations == () and "limit" in r.problems[0].message
    assert time.monotonic() - t0 < 1


def test_hidden_dirs_node_modules_and_non_sql_skipped_ok(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "notes.txt").write_text("SELECT 2;\n")
    for d in (".git", "node_modules"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "2_b.sql").write_text("SELECT 3;\n")
    assert names(clean(discover([str(tmp_path)]))) == ["1_a.sql"]


def test_unrecognised_layout_falls_back_with_note_ok(tmp_path: Path) -> None:
    (tmp_path / "views.sql").write_text("SELECT 1;\n")
    (tmp_path / "functions.sql").write_text("SELECT 2;\n")
    r = clean(discover([str(tmp_path)]))
    assert names(r) == ["functions.sql", "views.sql"]
    assert any("no known migration layout" in n for n in r.notes)


def test_mixed_layout_falls_back_with_note_ok(tmp_path: Path) -> None:
    (tmp_path / "V1__a.sql").write_text("SELECT 1;\n")
    (tmp_path / "2_b.up.sql").write_text("SELECT 2;\n")
    (tmp_path / "2_b.down.sql").write_text("SELECT 3;\n")
    r = clean(discover([str(tmp_path)]))
    assert names(r) == ["2_b.up.sql", "V1__a.sql"]
    assert any("both Flyway and golang-migrate" in n for n in r.notes)
    assert any("2_b.down.sql" in n for n in r.notes)  # a down is never linted as an up


def test_dbmate_file_without_up_err(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text("-- migrate:up\nSELECT 1;\n")
    (tmp_path / "2_b.sql").write_text("-- migrate:down\nSELECT 2;\n")
    r = discover([str(tmp_path)])
    assert names(r) == ["1_a.sql"]
    assert "migrate:up" in r.problems[0].message


def test_manifest_missing_file_and_bad_json_err(tmp_path: Path) -> None:
    v = tmp_path / "versioned" / "v1.0"
    v.mkdir(parents=True)
    (v / "manifest.json").write_text('{"SchemaUpdateCqlFiles": ["a.sql", "gone.sql"]}')
    (v / "a.sql").write_text("SELECT 1;\n")
    (v / "extra.sql").write_text("SELECT 2;\n")
    w = tmp_path / "versioned" / "v1.1"
    w.mkdir()
    (w / "manifest.json").write_text("{not json")
    (w / "b.sql").write_text("SELECT 3;\n")
    r = discover([str(tmp_path)])
    assert names(r) == ["a.sql", "b.sql"]
    assert sorted(os.path.basename(p.path) for p in r.problems) == ["gone.sql", "manifest.json"]
    assert any("extra.sql" in n for n in r.notes)


# --- the real-world corpus --------------------------------------------------------------------
def test_corpus_every_sql_file_accounted_for_ok(corpus: Path) -> None:
    for project in sorted(p for p in corpus.iterdir() if p.is_dir()):
        r = discover([str(project)])
        assert r.migrations, project.name
        ups = [m.path for m in r.migrations]
        assert len(ups) == len(set(ups))
        downs = {m.down.path for m in r.migrations if m.down}
        problems = {p.path for p in r.problems}
        for f in project.rglob("*.sql"):
            path = str(f)
            accounted = (
                path in ups
                or path in downs
                or path in problems
                or any(n.startswith(path + ":") for n in r.notes)
            )
            assert accounted, path
            assert not path.endswith(".down.sql") or path not in ups


def test_corpus_layouts_ok(corpus: Path) -> None:
    expected = {
        "documenso": "prisma",
        "kratos": "popx",
        "supabase-auth": "popx",  # one ".postgres.up.sql" file makes it popx-flavoured
        "temporal": "versioned-dirs",
    }
    for project, layout in expected.items():
        r = discover([str(corpus / project)])
        assert {m.layout for m in r.migrations} == {layout}, project
        assert r.problems == (), project
    kratos = discover([str(corpus / "kratos")])
    versions = [int(m.version or 0) for m in kratos.migrations]
    assert versions == sorted(versions)
    assert any(not m.in_transaction for m in kratos.migrations)  # .autocommit. files
