"""Cheap pre-checks in front of rules must say yes whenever the check they replaced did."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from sqlsafe.discover import discover
from sqlsafe.identifiers import may_have_long_identifier
from sqlsafe.parse import parse_section

_IDENT_CHAR = r'[^\s.,;()\[\]\'"=<>+*/-]'
# ST009's pre-check for ASCII text as first written: a run of 64 identifier characters, or a
# quoted name of 64 characters or more.
_REFERENCE = re.compile(_IDENT_CHAR + r'{64}|"[^"]{64,}"')


def _same(sql: str) -> None:
    assert sql.isascii()
    if '""' in sql:  # a doubled quote: the scanner decides, before any regex
        assert may_have_long_identifier(sql)
        return
    assert may_have_long_identifier(sql) == (_REFERENCE.search(sql) is not None), sql


@pytest.mark.parametrize("size", [0, 1, 15, 16, 62, 63, 64, 65, 200])
@pytest.mark.parametrize("shape", [
    "{run}", "x {run}", "{run} x", "a.{run}.b", "({run})", "'{run}'", '"{run}"', '"a {run}"',
    "t_{run}_idx", "{run};{run}", "a-{run}", "x = {run}", "\t{run}\n",
])
def test_st009_long_run_shapes_ok(size: int, shape: str) -> None:
    _same(shape.format(run="n" * size))


def test_st009_random_text_ok() -> None:
    rng = random.Random(20240611)
    alphabet = "ab_9$ .,;()[]'\"=<>+*/-\t\n"
    for _ in range(3000):
        pieces = []
        for _ in range(rng.randint(1, 8)):
            pieces.append(rng.choice(alphabet) * rng.choice([1, 2, 20, 63, 64, 70]))
        _same("".join(pieces))


def test_st009_corpus_ok(corpus: Path) -> None:
    found = 0
    for project in sorted(p for p in corpus.iterdir() if p.is_dir()):
        for m in discover([str(project)]).migrations:
            for stmt in parse_section(m.section).statements:
                if stmt.sql.isascii():
                    _same(stmt.sql)
                    found += may_have_long_identifier(stmt.sql)
    assert found > 10
