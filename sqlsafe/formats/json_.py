"""``--format json``: the version-1 contract of DESIGN.md."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

from ..model import Finding, LintResult, StatementInfo


def lint_payload(result: LintResult) -> dict[str, Any]:
    return {
        "version": 1,
        "files": list(result.files),
        "findings": [f.to_json() for f in result.findings],
        "statements": [s.to_json() for s in result.statements],
        "summary": _summary(result),
    }


def _summary(result: LintResult) -> dict[str, int]:
    return {
        "files": len(result.files),
        "statements": len(result.statements),
        "errors": result.errors,
        "warnings": result.warnings,
    }


def render(result: LintResult) -> str:
    """``dumps_by_line(lint_payload(result))``, with each finding and statement line spelled
    here from the record's fields instead of a dict through the encoder: the same text
    (tests/lint/test_json_render.py compares both on the corpus), in a third of the time (the
    encoder took 8 microseconds a line, a tenth of a corpus lint)."""
    string = getattr(json.encoder, "c_encode_basestring", None)
    if string is None:  # a Python without the C accelerator
        return dumps_by_line(lint_payload(result))
    one = _encoder()
    findings = _FindingLines(string, one)
    return _by_line((
        ("version", one(1)),
        ("files", [one(f) for f in result.files]),
        ("findings", [findings.line(f) for f in result.findings]),
        ("statements", _statement_lines(result.statements, string, one)),
        ("summary", one(_summary(result))),
    ), one)


def _by_line(parts: tuple[tuple[str, str | list[str]], ...], one: Callable[[Any], str]) -> str:
    """``dumps_by_line`` over values already encoded: a list holds one encoded item each.
    One join over every piece: a corpus lint's JSON is megabytes, and joining each list
    first copied most of it twice (fresh memory the first time, each page a fault)."""
    pieces = ["{\n"]
    add = pieces.append
    for n, (key, value) in enumerate(parts):
        if n:
            add(",\n")
        if isinstance(value, list):
            if value:
                add(f"  {one(key)}: [\n    ")
                for i, item in enumerate(value):
                    if i:
                        add(",\n    ")
                    add(item)
                add("\n  ]")
            else:
                add(f"  {one(key)}: []")
        else:
            add(f"  {one(key)}: {value}")
    add("\n}\n")
    return "".join(pieces)


class _FindingLines:
    """One finding as ``one(finding.to_json())`` spells it. The part that depends on the
    rule and severity only, and the encoded paths and statements, are kept for the next
    finding that has them."""

    def __init__(self, string: Callable[[str], str], one: Callable[[Any], str]) -> None:
        self.string = string
        self.one = one
        self.heads: dict[tuple[str, str, str, str], str] = {}
        self.paths: dict[str, str] = {}
        self.docs: dict[str, str] = {}
        self.statement: tuple[object, str] = (None, "")

    def line(self, f: Finding) -> str:
        if type(f.message) is not str or type(f.help) is not str or \
                type(f.statement) is not str or type(f.doc) is not str or \
                type(f.recipe) is not str or type(f.path) is not str:
            return self.one(f.to_json())  # not what the model promises: the encoder decides
        e = self.string
        key = (f.code, f.rule, f.category, f.severity)
        head = self.heads.get(key)
        if head is None:
            head = self.heads[key] = (
                f'{{"code": {self.one(f.code)}, "rule": {self.one(f.rule)}, '
                f'"category": {self.one(f.category)}, "severity": {self.one(f.severity)}, '
                '"path": ')
        path = self.paths.get(f.path)
        if path is None:
            path = self.paths[f.path] = e(f.path)
        seen, statement = self.statement
        if seen is not f.statement:  # findings of one statement share its text
            statement = e(f.statement)
            self.statement = (f.statement, statement)
        doc = self.docs.get(f.doc)
        if doc is None:
            doc = self.docs[f.doc] = e(f.doc)
        span = f.span
        text = (f'{head}{path}, "line": {span.line!r}, "column": {span.column!r}, '
                f'"end_line": {span.end_line!r}, "end_column": {span.end_column!r}, '
                f'"message": {e(f.message)}, "help": {e(f.help)}, "statement": {statement}, '
                f'"doc": {doc}')
        if f.fix is not None:
            text += ', "fix": ' + self.one({"description": f.fix.description,
                                           "replacement": f.fix.replacement,
                                           "safe": f.fix.safe})
        if f.recipe:
            text += f', "recipe": {e(f.recipe)}'
        return text + "}"


def _statement_lines(statements: tuple[StatementInfo, ...], string: Callable[[str], str],
                     one: Callable[[Any], str]) -> list[str]:
    """Each statement as ``one(statement.to_json())`` spells it."""
    out = []
    paths: dict[str, str] = {}
    for s in statements:
        if type(s.path) is not str or type(s.kind) is not str:
            out.append(one(s.to_json()))
            continue
        path = paths.get(s.path)
        if path is None:
            path = paths[s.path] = string(s.path)
        locks = ", ".join(f'{{"relation": {string(lk.relation)}, "mode": {string(lk.mode)}}}'
                          for lk in s.locks)
        rewrites = ", ".join(string(r) for r in s.rewrites)
        out.append(f'{{"path": {path}, "line": {s.span.line!r}, "kind": {string(s.kind)}, '
                   f'"locks": [{locks}], "rewrites": [{rewrites}]}}')
    return out


def dumps_by_line(payload: dict[str, Any]) -> str:
    """The payload as JSON with each top-level key, and each item of a top-level list, on a
    line of its own: one finding or statement per line reads and greps well. Each line comes
    from the C encoder; ``indent=2`` makes the json module fall back to its Python encoder,
    which took a fifth of a corpus lint."""
    one = _encoder()
    return _by_line(tuple((key, [one(item) for item in value] if isinstance(value, list)
                           else one(value)) for key, value in payload.items()), one)


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False)`` as one reusable function. json.dumps builds a
    JSONEncoder and a C encoder on every call, which took as long as encoding the thousands of
    findings and statements of a corpus; this builds the C encoder once, with the arguments
    JSONEncoder.iterencode passes it (no circular-reference check: a payload is a tree)."""
    encoder = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return encoder.encode
    c_encode = make(None, encoder.default, json.encoder.encode_basestring, None,
                    encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                    encoder.skipkeys, encoder.allow_nan)

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode
