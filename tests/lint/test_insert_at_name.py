"""insert_at_name places a fix where the per-name regex it replaced did."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sqlsafe import nodes as n
from sqlsafe.discover import discover
from sqlsafe.normalize import normalize
from sqlsafe.parse import parse_section
from sqlsafe.rules import idempotency as idem

# (words, last word optional) -> the pattern each call site used before.
FAMILIES: dict[tuple[tuple[str, ...], bool], Any] = {
    (("add", "column"), True): lambda name: rf"\bADD(?:\s+COLUMN)?(?=\s+{idem.name_re(name)})",
    (("drop", "column"), True): lambda name: rf"\bDROP(?:\s+COLUMN)?(?=\s+{idem.name_re(name)})",
    (("drop", "constraint"), False):
        lambda name: rf"\bDROP\s+CONSTRAINT(?=\s+{idem.name_re(name)})",
    # Consumed the name; only its start was used (before=True).
    (("add", "constraint"), False): lambda name: rf"\bADD\s+CONSTRAINT\s+{idem.name_re(name)}",
}


def _ctx(sql: str, start: int = 100) -> Any:
    return SimpleNamespace(stmt=SimpleNamespace(sql=sql, span=SimpleNamespace(start=start)))


def _same(sql: str, name: str) -> None:
    for (words, optional), pattern in FAMILIES.items():
        for before in (False, True):
            if words == ("add", "constraint") and not before:
                continue
            expected = idem.insert_at(_ctx(sql), pattern(name), "X", "d", before=before)
            got = idem.insert_at_name(_ctx(sql), words, name, "X", "d", last_optional=optional,
                                      before=before)
            assert got == expected, (sql, name, words, before)


EDGE = [
    ("ALTER TABLE t ADD COLUMN x int", "x"), ("ALTER TABLE t ADD x int", "x"),
    ("alter table t add column X int", "x"), ('ALTER TABLE t ADD COLUMN "X" int', "X"),
    ('ALTER TABLE t ADD COLUMN "X" int', "x"), ("ALTER TABLE t ADD COLUMN xy int", "x"),
    ("ALTER TABLE t ADD COLUMN x$y int", "x"), ("ALTER TABLE t ADD COLUMN x_y int", "x"),
    ("ALTER TABLE t ADD COLUMN column int", "column"), ("ALTER TABLE t ADD COLUMNcol int", "col"),
    ("ALTER TABLE t ADD\tCOLUMN\n\n x int", "x"), ("ALTER TABLE t ADD\x1cCOLUMN\x1fx", "x"),
    ("ALTER TABLE t ADD\x0bx int", "x"), ("ALTER TABLE t ADDCOLUMN x int", "x"),
    ("ALTER TABLE t READD COLUMN x", "x"), ("ALTER TABLE t ADD COLUMN x", "x"),
    ("ALTER TABLE t ADD COLUMN", "column"), ("ADD x", "x"), ("add  x", "X"), ("ADD", "x"),
    ("ALTER TABLE t ADD COLUMN a int, ADD COLUMN b int", "b"),
    ("ALTER TABLE t ADD COLUMN a int, ADD b int", "b"), ("ALTER TABLE address ADD b int", "b"),
    ('ALTER TABLE t ADD COLUMN "we""ird" int', 'we"ird'), ('ALTER TABLE t ADD COLUMN "a b" int', "a b"),
    ("ALTER TABLE t ADD COLUMN $x int", "$x"), ("ALTER TABLE t ADD COLUMN x1 int", "x1"),
    ("ALTER TABLE t ADD COLUMN 1x int", "1x"), ('ALTER TABLE t ADD COLUMN "x', "x"),
    ("ALTER TABLE t ADD COLUMN x", ""), ("ALTER TABLE t DROP COLUMN x, DROP y", "y"),
    ("ALTER TABLE t DROP CONSTRAINT c, DROP CONSTRAINT d", "d"),
    ("ALTER TABLE t DROP CONSTRAINTc", "c"), ("ALTER TABLE t DROP  constraint  C1", "c1"),
    ('ALTER TABLE t ADD CONSTRAINT "Fk" FOREIGN KEY (a) REFERENCES u', "Fk"),
    ("ALTER TABLE t ADD CONSTRAINT fk_a FOREIGN KEY (a)", "fk"),
    ("ALTER TABLE t ADD CONSTRAINT fk_a FOREIGN KEY (a)", "fk_a"),
    ("ALTER TABLE t DROP COLUMN x CASCADE; -- drop x", "x"),
    # non-ASCII text or names take the regex
    ("ALTER TABLE t ADD COLUMN ſ int", "s"), ("ALTER TABLE t ADD COLUMN s int", "ſ"),
    ("ALTER TABLE t ADD COLUMN café int", "café"), ('ALTER TABLE t ADD COLUMN "Ä" int', "ä"),
    ("ALTER TABLE t ADD\u00a0COLUMN x", "x"), ("ALTER TABLE t ADD COLUMN x\u00e9", "x"),
    ("ALTER TABLE t ADD café int", "café"), ("ALTER TABLE t DROP é", "é"),
]


@pytest.mark.parametrize(("sql", "name"), EDGE)
def test_edge_cases_ok(sql: str, name: str) -> None:
    _same(sql, name)


def test_random_text_ok() -> None:
    rng = random.Random(7)
    pieces = ["ADD", "add", "Drop", "DROP", "COLUMN", "column", "CONSTRAINT", "constraint", "x",
              "X", "xy", "x$", "_x", '"x"', '"X"', '"x', "1", " ", "  ", "\t", "\n", "\x1c", ",",
              ";", "(", ")", "$", "_", "a"]
    names = ["x", "X", "xy", "x$", "_x", "a", "column", "constraint", "1"]
    for _ in range(4000):
        sql = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        _same(sql, rng.choice(names))


def test_corpus_names_ok(corpus: Path) -> None:
    checked = 0
    for project in sorted(p for p in corpus.iterdir() if p.is_dir()):
        for m in discover([str(project)]).migrations:
            for stmt in parse_section(m.section).statements:
                if stmt.node is None:
                    continue
                for a in normalize(stmt.node):
                    match a:
                        case n.AddColumn():
                            names = [a.column.name]
                        case n.DropColumn():
                            names = [a.column]
                        case n.DropConstraint():
                            names = [a.name]
                        case n.AddConstraint() if a.constraint.name:
                            names = [a.constraint.name]
                        case _:
                            continue
                    for name in names:
                        _same(stmt.sql, name)
                        checked += 1
    assert checked > 300
