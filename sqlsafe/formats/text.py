"""``--format text``: file:line:col, code, message, a code frame; colour only when asked."""

from __future__ import annotations

from ..model import Finding, LintResult

_SEV_COLOR = {"error": "red", "warning": "yellow", "info": "blue"}
_ANSI = {"red": "31", "yellow": "33", "blue": "34", "bold": "1", "dim": "2", "cyan": "36"}


def _c(text: str, style: str, color: bool) -> str:
    if not color:
        return text
    return f"\x1b[{_ANSI[style]}m{text}\x1b[0m"


def _frame(f: Finding, lines: list[str] | None, color: bool) -> list[str]:
    if not lines or f.span.line < 1 or f.span.line > len(lines):
        return []
    width = len(str(f.span.line))
    src = lines[f.span.line - 1].rstrip("\r\n")
    end_col = f.span.end_column if f.span.end_line == f.span.line else len(src) + 1
    caret_len = max(1, min(end_col, len(src) + 1) - f.span.column)
    gutter = " " * width + " |"
    return [
        _c(gutter, "dim", color),
        _c(f"{f.span.line} |", "dim", color) + " " + src,
        _c(gutter, "dim", color) + " " + " " * (f.span.column - 1)
        + _c("^" * caret_len, _SEV_COLOR.get(f.severity, "red"), color),
    ]


def render(result: LintResult, *, color: bool = False, sources: dict[str, str] | None = None,
           show_fixes: bool = True) -> str:
    out: list[str] = []
    split = {p: t.splitlines() for p, t in (sources or {}).items()}
    for f in result.findings:
        loc = _c(f"{f.path}:{f.span.line}:{f.span.column}:", "bold", color)
        sev = _c(f.severity, _SEV_COLOR.get(f.severity, "red"), color)
        out.append(f"{loc} {_c(f.code, 'bold', color)} {sev} [{f.rule}] {f.message}")
        out.extend("  " + line for line in _frame(f, split.get(f.path), color))
        if f.help:
            out.append(f"  = help: {f.help}")
        if show_fixes and f.fix is not None:
            safe = "" if f.fix.safe else " (unsafe: review before applying)"
            out.append(f"  = fix{safe}: {f.fix.description}")
        if f.recipe:
            out.append("  = safe recipe:")
            out.extend("      " + line for line in f.recipe.splitlines())
        out.append("")
    for note in result.notes:
        out.append(_c(f"note: {note}", "dim", color))
    n_files, n_stmts = len(result.files), len(result.statements)
    if result.findings:
        out.append(
            f"Found {result.errors} error(s), {result.warnings} warning(s), "
            f"{len(result.findings) - result.errors - result.warnings} info in {n_files} file(s), "
            f"{n_stmts} statement(s)."
        )
    else:
        out.append(f"No findings: {n_files} file(s), {n_stmts} statement(s) checked.")
    return "\n".join(out) + "\n"
