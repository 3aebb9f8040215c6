"""The JSON report is one json.dumps(..., ensure_ascii=False) per line, whichever way the
encoder is built."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sqlsafe.formats import json_

PAYLOAD: dict[str, Any] = {
    "version": 1,
    "files": ["a.sql", "dir/日本.sql", 'quote"and\\backslash.sql'],
    "findings": [
        {"code": "LK001", "message": "tab\there, newline\nthere, nul \x00, bell \x07",
         "statement": "SELECT 'é', '\u2028', '\U0001f600', '</script>'", "line": 3,
         "fix": {"description": "d", "replacement": "", "safe": True}, "ratio": 0.1,
         "big": 10**20, "neg": -1.5e-7, "none": None, "flag": False},
        {"code": "ST009", "nested": [[1, [2, {"k": []}]], {}], "empty": "", "unicode_key_ü": 1},
    ],
    "statements": [],
    "summary": {"files": 3, "errors": 1, "warnings": 0},
}


def _reference(payload: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    parts = []
    for key, value in payload.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(one(item) for item in value)
            parts.append(f"  {one(key)}: [\n    {items}\n  ]")
        else:
            parts.append(f"  {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def test_same_text_as_json_dumps_ok() -> None:
    text = json_.dumps_by_line(PAYLOAD)
    assert text == _reference(PAYLOAD)
    assert json.loads(text) == PAYLOAD


def test_without_the_c_encoder_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert json_.dumps_by_line(PAYLOAD) == _reference(PAYLOAD)


def test_nan_is_written_as_json_dumps_writes_it_ok() -> None:
    payload = {"findings": [{"x": float("nan"), "y": float("inf")}]}
    assert json_.dumps_by_line(payload) == _reference(payload)


def _lint_results() -> list[Any]:
    from pathlib import Path

    from sqlsafe.config import Config
    from sqlsafe.discover import discover
    from sqlsafe.lint import lint

    repo = Path(__file__).resolve().parents[2]
    out = [lint(discover([str(p)]), Config(extend_select=("ALL",)))
           for p in sorted({f.parent for f in (repo / "fixtures").rglob("*.sql")})]
    corpus = repo.parent / "shared" / "corpus"
    if corpus.is_dir():
        out.append(lint(discover([str(p) for p in sorted(corpus.iterdir()) if p.is_dir()]),
                        Config(extend_select=("ALL",))))
    return out


def test_render_spells_lines_as_the_encoder_does() -> None:
    """``render`` writes finding and statement lines itself: the same text as the encoder
    over ``lint_payload`` (fixtures, and the corpus when it is there)."""
    from sqlsafe._record import replace
    from sqlsafe.model import Finding, Fix, LockPrediction, Span, StatementInfo

    results = _lint_results()
    assert sum(len(r.findings) for r in results) > 50
    odd = Finding("XX001", "odd", "style", "warning", 'dir/日本"\\.sql', Span(1, 2, 3, 4),
                  "tab\there \x00 \u2028 \U0001f600", "</script>", "S\nQ\rL", "",
                  Fix("d\u00e9", 1, 2, "x", False), "recipe \\ here")
    odd_stmt = StatementInfo("p.sql", Span(7, 1, 7, 2), "x", "Kind\u00fc",
                             (LockPrediction('a."b"', "AccessExclusiveLock"),
                              LockPrediction("c", "ShareLock")), ("a.\"b\"", "é"), True)
    results.append(replace(results[0], findings=results[0].findings + (odd, odd),
                           statements=results[0].statements + (odd_stmt,), files=()))
    for result in results:
        text = json_.render(result)
        assert text == json_.dumps_by_line(json_.lint_payload(result))
        assert json.loads(text)["summary"]["statements"] == len(result.statements)
