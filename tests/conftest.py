"""Shared test helpers: the repository root and the real-world corpus next to it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The corpus lives beside the repository (../shared/corpus), not inside it: it is large and
# under other projects' licenses, so tests that need it skip when it is absent.
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS
