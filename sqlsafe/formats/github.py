"""``--format github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=CODE rule::message``. GitHub shows
them on the pull request's diff. Picked automatically when ``GITHUB_ACTIONS=true``.
"""

from __future__ import annotations

from ..model import Finding, LintResult

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(value: str) -> str:
    # The runner decodes these three in the message (actions/toolkit, command.ts escapeData).
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    # In properties ':' ends the property list and ',' separates properties, so they are escaped
    # as well (actions/toolkit, command.ts escapeProperty).
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    props = [("file", f.path), ("line", str(f.span.line)), ("endLine", str(f.span.end_line))]
    if f.span.end_line == f.span.line:
        # GitHub ignores (and its docs forbid) column ranges on multi-line annotations, so
        # columns go only on single-line ones.
        props[2:2] = [("col", str(f.span.column))]
        props.append(("endColumn", str(max(f.span.end_column, f.span.column))))
    props.append(("title", f"{f.code} {f.rule}"))
    message = f.message + (f"\n{f.help}" if f.help else "")
    if f.doc:
        message += f"\nSee {f.doc}"
    head = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{COMMANDS.get(f.severity, 'warning')} {head}::{escape_data(message)}"


def render(result: LintResult) -> str:
    lines = [annotation(f) for f in result.findings]
    # A plain closing line for the job log; annotations alone don't say how many files were read.
    lines.append(f"sqlsafe: {result.errors} error(s), {result.warnings} warning(s), "
                 f"{len(result.findings) - result.errors - result.warnings} info in "
                 f"{len(result.files)} file(s)")
    return "\n".join(lines) + "\n"
