"""``--format json``: the version-1 contract of DESIGN.md."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

from ..model import LintResult


def lint_payload(result: LintResult) -> dict[str, Any]:
    return {
        "version": 1,
        "files": list(result.files),
        "findings": [f.to_json() for f in result.findings],
        "statements": [s.to_json() for s in result.statements],
        "summary": {
            "files": len(result.files),
            "statements": len(result.statements),
            "errors": result.errors,
            "warnings": result.warnings,
        },
    }


def render(result: LintResult) -> str:
    return dumps_by_line(lint_payload(result))


def dumps_by_line(payload: dict[str, Any]) -> str:
    """The payload as JSON with each top-level key, and each item of a top-level list, on a
    line of its own: one finding or statement per line reads and greps well. Each line comes
    from the C encoder; ``indent=2`` makes the json module fall back to its Python encoder,
    which took a fifth of a corpus lint."""
    one = _encoder()
    parts = []
    for key, value in payload.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(map(one, value))
            parts.append(f"  {one(key)}: [\n    {items}\n  ]")
        else:
            parts.append(f"  {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


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
