"""Every rule, registered by importing its family module. An explicit list, no scanning."""

from __future__ import annotations

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
