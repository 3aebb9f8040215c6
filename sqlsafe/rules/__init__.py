"""Every rule, registered by importing its family module. An explicit list, no scanning."""

from __future__ import annotations

# CP901 (edited-merged-migration) is registered next to the git code that detects it; importing
# that module here puts it in the catalogue like every other rule.
from .. import gitdiff  # noqa: F401
from . import (  # noqa: F401
    backfill,
    compatibility,
    destructive,
    idempotency,
    locking,
    meta,
    security,
    style,
    timeout,
    transaction,
)
