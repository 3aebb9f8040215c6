"""Findings the engine emits itself: input it could not read, and suppression bookkeeping."""

from __future__ import annotations

from ..registry import meta

SYNTAX = meta("SX001", "syntax-error", "syntax",
              summary="The statement does not parse as PostgreSQL.")
INPUT = meta("SX002", "unreadable-input", "syntax",
             summary="A path could not be read as SQL (missing, binary, not UTF-8, too large).")
UNUSED = meta("ST901", "unused-suppression", "style", severity="warning",
              summary="A sqlsafe: ignore comment that suppressed nothing.")
UNKNOWN = meta("ST902", "unknown-rule-in-suppression", "style", severity="warning",
               summary="A sqlsafe: ignore comment names a rule that does not exist.")
NO_REASON = meta("ST903", "suppression-without-reason", "style",
                 summary='A sqlsafe: ignore comment without reason="..." suppresses nothing.')
EXPIRED = meta("ST904", "expired-suppression", "style", severity="warning",
               summary="A sqlsafe: ignore comment whose until= date has passed.")
# Found by sqlsafe/gitdiff.py (--changed-since); registered here so the catalogue has it without
# importing the git code on every lint run.
EDITED = meta("CP901", "edited-merged-migration", "compatibility",
              summary="A migration that already exists on the base branch was edited; databases "
                      "that applied it never run the edit.")
META_RULES = (SYNTAX, INPUT, UNUSED, UNKNOWN, NO_REASON, EXPIRED)
