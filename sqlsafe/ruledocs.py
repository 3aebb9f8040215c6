"""Rule pages (``rules/<CODE>-<name>.md``): parse their typed SQL blocks.

Blocks are fenced with an info string: ``sql bad``, ``sql good``, ``sql fixed``, ``sql setup``,
optionally followed by ``key=value`` options (``pg=11``, ``tx=true``, ``layout=dbmate``).
In ``sql bad`` blocks a comment ``-- expect: CODE[, CODE]`` marks the statement it sits in (or
the next statement) as producing exactly those findings of the page's rule.
``sql setup`` blocks are earlier migrations of the same set (tables that already exist).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE_RE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
EXPECT_RE = re.compile(r"--\s*expect:\s*(?P<codes>[A-Z]{2}\d{3}(?:\s*,\s*[A-Z]{2}\d{3})*)")


@dataclass(frozen=True)
class Block:
    kind: str  # bad | good | fixed | setup
    sql: str
    line: int  # line of the first SQL line in the page
    options: dict[str, str] = field(default_factory=dict)


def blocks(page: str) -> list[Block]:
    out: list[Block] = []
    for m in _FENCE_RE.finditer(page):
        info = m.group("info").split()
        if len(info) < 2 or info[0] != "sql" or info[1] not in ("bad", "good", "fixed", "setup"):
            continue
        opts = dict(p.split("=", 1) for p in info[2:] if "=" in p)
        line = page.count("\n", 0, m.start("body")) + 1
        out.append(Block(info[1], m.group("body"), line, opts))
    return out


def title_code(page: str) -> tuple[str, str] | None:
    m = re.match(r"#\s+([A-Z]{2}\d{3})\s+([a-z0-9-]+)", page)
    return (m.group(1), m.group(2)) if m else None


REQUIRED_HEADINGS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")
