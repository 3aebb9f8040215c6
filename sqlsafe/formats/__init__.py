"""Reporters: one module per format, each a pure ``render(result, ...) -> str``."""

from __future__ import annotations

LINT_FORMATS = ("text", "json")
