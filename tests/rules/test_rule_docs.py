"""Every rule has a page and every page a rule; every example on a page runs.

Bad blocks must produce exactly the marked findings (with only the page's rule enabled),
good and fixed blocks none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sqlsafe import registry
from sqlsafe._record import replace
from sqlsafe.config import Config, parse_pg_version
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section
from sqlsafe.ruledocs import EXPECT_RE, REQUIRED_HEADINGS, Block, blocks, title_code

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
PAGES = sorted(RULES_DIR.glob("*.md")) if RULES_DIR.is_dir() else []
ENGINE_RULES = {"SX001", "SX002", "ST901", "ST902", "ST903", "ST904"}


def _rule_pages() -> list[Path]:
    return [p for p in PAGES if re.match(r"[A-Z]{2}\d{3}-", p.name)]


def test_every_rule_has_a_page_and_every_page_a_rule() -> None:
    rules = {f"{r.code}-{r.name}.md" for r in registry.all_rules()}
    pages = {p.name for p in _rule_pages()}
    assert sorted(rules - pages) == [], "rules without a page"
    assert sorted(pages - rules) == [], "pages without a rule"


def _migrations(block: Block, setups: list[Block]) -> DiscoveryResult:
    tx = block.options.get("tx", "false") == "true"
    migs = []
    for i, b in enumerate([*setups, block]):
        path = f"{i:03d}_{b.kind}.sql"
        migs.append(Migration(path=path, abspath=None, layout=block.options.get("layout", "file"),
                              version=str(i), name=b.kind, section=Section(path, b.sql),
                              in_transaction=tx if b is block else False))
    return DiscoveryResult(tuple(migs))


def _expected(sql: str) -> set[tuple[int, str]]:
    """(statement start line, code) for each marker."""
    from sqlsafe.parse import parse_section

    stmts = parse_section(Section("x.sql", sql)).statements
    out: set[tuple[int, str]] = set()
    for lineno, line in enumerate(sql.splitlines(), start=1):
        m = EXPECT_RE.search(line)
        if not m:
            continue
        target = None
        for s in stmts:
            if s.span.line <= lineno <= s.span.end_line or s.span.line > lineno:
                target = _inner_line(s, lineno) or s.span.line
                break
        assert target is not None, f"marker on line {lineno} has no statement"
        for code in re.split(r"\s*,\s*", m.group("codes")):
            out.add((target, code))
    return out


def _inner_line(stmt: Any, lineno: int) -> int | None:
    """For a marker inside a DO block: the first line of the block's statement it marks
    (findings inside a block are reported at the statement of the block that causes them)."""
    from sqlsafe import nodes as n
    from sqlsafe import plpgsql
    from sqlsafe.normalize import normalize

    if stmt.node is None:
        return None
    for action in normalize(stmt.node):
        if isinstance(action, n.DoBlock):
            for inner in plpgsql.expand(stmt, action.body):
                if inner.span.line <= lineno <= inner.span.end_line:
                    return int(inner.span.line)
    return None


_CONFIG_RE = re.compile(r"^```toml config\n(?P<body>.*?)^```", re.M | re.S)


def _page_config(page: str, source: str) -> Config:
    """The settings a page's examples run under: its ```toml config block, if any (for rules
    that check nothing until configured)."""
    import tomllib

    from sqlsafe.config import from_mapping

    m = _CONFIG_RE.search(page)
    if m is None:
        return Config()
    data = tomllib.loads(m.group("body"))
    return from_mapping(data.get("tool", {}).get("sqlsafe", data), source)


def _cases() -> list[tuple[str, Path, int]]:
    cases = []
    for page in _rule_pages():
        for i, b in enumerate(blocks(page.read_text(encoding="utf-8"))):
            if b.kind != "setup":
                cases.append((f"{page.stem}:{b.line}:{b.kind}", page, i))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "page", "index"), CASES, ids=[c[0] for c in CASES])
def test_page_example(name: str, page: Path, index: int) -> None:
    text = page.read_text(encoding="utf-8")
    tc = title_code(text)
    assert tc is not None, f"{page.name}: the title must be '# CODE name'"
    code, _ = tc
    all_blocks = blocks(text)
    block = all_blocks[index]
    setups = [b for b in all_blocks[:index] if b.kind == "setup"]
    pg, minor = parse_pg_version(block.options.get("pg", "15"))
    cfg = replace(_page_config(text, page.name).merged(pg_version=pg, select=(code,)),
                  pg_minor=minor)
    result = lint(_migrations(block, setups), cfg)
    last = f"{len(setups):03d}_{block.kind}.sql"
    got = {(f.span.line, f.code) for f in result.findings if f.path == last and f.code == code}
    others = [f for f in result.findings if f.code not in (code,) and f.code not in ENGINE_RULES]
    assert not others
    engine = [f for f in result.findings if f.code in ENGINE_RULES and f.code != code]
    assert not engine, f"{page.name}:{block.line}: {[(f.code, f.message) for f in engine]}"
    if block.kind == "bad":
        expected = _expected(block.sql)
        assert expected, f"{page.name}:{block.line}: a bad block needs -- expect: markers"
        assert got == expected, f"{page.name}:{block.line}"
    else:
        assert got == set(), f"{page.name}:{block.line}: {block.kind} block has findings"


@pytest.mark.parametrize("page", _rule_pages(), ids=[p.stem for p in _rule_pages()])
def test_page_shape(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for heading in REQUIRED_HEADINGS:
        assert heading in text, f"{page.name} lacks '{heading}'"
    kinds = {b.kind for b in blocks(text)}
    meta = registry.lookup(page.stem.split("-", 1)[0])
    assert meta is not None
    if meta.func is not None:
        assert "bad" in kinds and "good" in kinds, f"{page.name} needs bad and good examples"


def test_catalogue_is_current() -> None:
    from sqlsafe.ruledocs import catalogue

    committed = (RULES_DIR / "README.md").read_text(encoding="utf-8")
    assert committed == catalogue(), "rules/README.md is stale: python -m sqlsafe.ruledocs"


def test_explain_prints_the_page_from_the_package() -> None:
    from click.testing import CliRunner

    from sqlsafe.cli import cli

    result = CliRunner().invoke(cli, ["explain", "LK001"])
    assert result.exit_code == 0
    assert result.output.startswith("# LK001 non-concurrent-index-creation")
    result = CliRunner().invoke(cli, ["explain", "non-concurrent-index-creation"])
    assert "## Why is this bad?" in result.output
    result = CliRunner().invoke(cli, ["explain", "XX999"])
    assert result.exit_code == 2
