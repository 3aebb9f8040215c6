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
