"""Configuration: ``[tool.sqlsafe]`` in the nearest pyproject.toml, or ``.sqlsafe.toml``.

Precedence: command line over file over defaults. Unknown keys are an error (exit 2), so a
typo never silently switches a check off.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ._record import Record, field, record, replace

# The oldest PostgreSQL major the community still supports on 2026-11-22 (14 reached end of
# life on 2026-11-12). Override with --pg-version or pg_version.
DEFAULT_PG_VERSION = 15
SUPPORTED_PG_VERSIONS = range(9, 20)


class ConfigError(Exception):
    pass


@record
class Config(Record):
    pg_version: int = DEFAULT_PG_VERSION
    # The minor release when the target was given as major.minor ("14.3"); None: not known.
    # Only a few facts depend on it (CONCURRENTLY index builds on 14.0-14.3).
    pg_minor: int | None = None
    # Whether the version was given (command line or file) rather than defaulted: the local
    # engine then replays on exactly that major's binaries.
    pg_version_given: bool = False
    dialect: str = "postgres"  # other dialects are parsed with sqlglot (dialect-neutral rules only)
    select: tuple[str, ...] = ()  # empty: every rule that is not opt-in
    extend_select: tuple[str, ...] = ()  # opt-in rules to add to the default set
    ignore: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=dict)  # rule code/name -> severity
    fail_on: str = "error"  # error | warning | info | never
    assume_in_transaction: bool | None = None
    layout: str | None = None
    exclude: tuple[str, ...] = ()  # glob patterns of paths to skip
    lock_timeout_max_ms: int = 10_000  # a lock_timeout longer than this does not count
    profiles: tuple[str, ...] = ()  # opt-in rule sets, e.g. "supabase"
    exposed_schemas: tuple[str, ...] = ("public",)
    # ST015: object kind -> regular expression its new names must match (re.search).
    naming: dict[str, str] = field(default_factory=dict)
    # dry run
    engine: str = "embedded"
    image: str | None = None
    statement_timeout_ms: int = 60_000
    # SQL applied before the first migration in a dry run (e.g. `pg_dump --schema-only` of
    # production); a relative path is relative to the config file.
    setup: str | None = None
    report: str = "dry_run_report.md"
    # Server settings for the sandbox (``--server-setting NAME=VALUE``): given at server start
    # by the embedded, local and docker engines, per session by the url engine.
    server_settings: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the file the config came from

    def merged(self, **overrides: Any) -> Config:
        clean = {k: v for k, v in overrides.items() if v is not None and v != ()}
        return replace(self, **clean)


_KEYS = set(Config.__record_fields__) - {"source", "pg_minor", "pg_version_given"}
_ALIASES = {"pg-version": "pg_version", "fail-on": "fail_on", "extend-select": "extend_select",
            "assume-in-transaction": "assume_in_transaction",
            "lock-timeout-max-ms": "lock_timeout_max_ms",
            "statement-timeout-ms": "statement_timeout_ms",
            "exposed-schemas": "exposed_schemas", "server-settings": "server_settings"}


def find_config(start: str | os.PathLike[str]) -> tuple[str, dict[str, Any]] | None:
    """The nearest ``.sqlsafe.toml``, or ``pyproject.toml`` with a ``[tool.sqlsafe]`` table, in
    ``start`` (a directory, or a file's directory) and its parents: (its path, the table)."""
    d = os.path.realpath(start)
    if not os.path.isdir(d):
        d = os.path.dirname(d)
    while True:
        dot = os.path.join(d, ".sqlsafe.toml")
        if os.path.isfile(dot):
            return dot, _read(dot)
        pp = os.path.join(d, "pyproject.toml")
        if os.path.isfile(pp):
            data = _read(pp)
            tool = data.get("tool", {}).get("sqlsafe")
            if tool is not None:
                return pp, tool
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _read(path: str) -> dict[str, Any]:
    import tomllib  # only when there is a file to read

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if os.path.basename(path) == ".sqlsafe.toml" and "tool" in data and "sqlsafe" in data["tool"]:
        return dict(data["tool"]["sqlsafe"])
    return data


def from_mapping(data: dict[str, Any], source: str) -> Config:
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _ALIASES.get(raw_key, raw_key.replace("-", "_"))
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise ConfigError(f"{source}: unknown key '{raw_key}' in [tool.sqlsafe] (known: {known})")
        if key == "pg_version":
            values["pg_version"], values["pg_minor"] = parse_pg_version(value, source)
            values["pg_version_given"] = True
            continue
        values[key] = _coerce(key, value, source)
    if values.get("setup") and not os.path.isabs(values["setup"]):
        values["setup"] = os.path.join(os.path.dirname(os.path.realpath(source)), values["setup"])
    return Config(**values, source=source)


def _coerce(key: str, value: Any, source: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: '{key}' must be {expected}, not {value!r}")

    if key in ("select", "extend_select", "ignore", "exclude", "profiles", "exposed_schemas"):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    if key in ("lock_timeout_max_ms", "statement_timeout_ms"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("an integer")
        return value
    if key == "assume_in_transaction":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "severity":
        if not isinstance(value, dict):
            raise bad("a table of rule = severity")
        for k, v in value.items():
            if v not in ("error", "warning", "info", "off"):
                raise ConfigError(f"{source}: severity of '{k}' must be error, warning, info or off")
        return dict(value)
    if key == "naming":
        return _naming(value, source)
    if key == "server_settings":
        if not isinstance(value, dict):
            raise bad("a table of setting = value")
        return {name: server_setting_value(name, v, f"{source}: server_settings")
                for name, v in value.items()}
    if key == "fail_on":
        if value not in ("error", "warning", "info", "never"):
            raise bad("error, warning, info or never")
        return value
    if key == "dialect":
        if not isinstance(value, str):
            raise bad("a dialect name (postgres, mysql, sqlite, ...)")
        check_dialect(value, source)
        return value
    if key == "engine":
        if value not in ("embedded", "docker", "local", "url"):
            raise bad("embedded, docker, local or url")
        return value
    if not isinstance(value, str):
        raise bad("a string")
    return value


_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def server_setting_value(name: str, value: Any, source: str) -> str:
    """A server setting's value as PostgreSQL's ``-c name=value`` takes it. Raises
    ConfigError for a name PostgreSQL could not have, or a value that is not a scalar."""
    if not _SETTING_NAME.fullmatch(name):
        raise ConfigError(f"{source}: '{name}' is not a server setting name")
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ConfigError(f"{source}: {name} must be a string, number or boolean, not {value!r}")


def parse_server_settings(values: tuple[str, ...], source: str = "--server-setting",
                          ) -> dict[str, str]:
    """``NAME=VALUE`` pairs from the command line."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{source}: '{item}' is not NAME=VALUE "
                              "(e.g. --server-setting max_locks_per_transaction=256)")
        out[name.strip()] = server_setting_value(name.strip(), value.strip(), source)
    return out


# The object kinds ST015 (naming-convention) knows; a key outside it is a typo, not a wish.
NAMING_KINDS = ("schema", "table", "view", "sequence", "type", "column", "index",
                "primary_key", "unique", "foreign_key", "check", "exclusion")


def _naming(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: 'naming' must be a table of kind = \"regex\"")
    for kind, pattern in value.items():
        if kind not in NAMING_KINDS:
            raise ConfigError(f"{source}: unknown key '{kind}' in naming (known: "
                              f"{', '.join(NAMING_KINDS)})")
        if not isinstance(pattern, str):
            raise ConfigError(f"{source}: naming.{kind} must be a string, not {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{source}: naming.{kind} is not a valid regular expression: "
                              f"{exc}") from None
    return dict(value)


def check_pg_version(value: int, source: str = "--pg-version") -> None:
    if value not in SUPPORTED_PG_VERSIONS:
        raise ConfigError(f"{source}: PostgreSQL {value} is not a version sqlsafe knows (9 to 19)")


_PG_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?")


def parse_pg_version(value: Any, source: str = "--pg-version") -> tuple[int, int | None]:
    """(major, minor or None) from ``15``, ``"15"`` or ``"14.3"``: the target server.

    Only majors 10 and later are ``major.minor``; a 9.x version is a major of its own and the
    rules know it as 9 (``"9.6"`` gives (9, None))."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{source}: 'pg_version' must be a major version such as 15 or a "
                          f"release such as \"14.3\", not {value!r}")
    if isinstance(value, int):
        check_pg_version(value, source)
        return value, None
    m = _PG_VERSION_RE.fullmatch(value.strip())
    if m is None:
        raise ConfigError(f"{source}: PostgreSQL version {value!r} is not N or N.M "
                          "(e.g. 15 or 14.3)")
    major = int(m.group(1))
    check_pg_version(major, source)
    minor = int(m.group(2)) if m.group(2) is not None and major >= 10 else None
    return major, minor


# The dialect names that mean PostgreSQL (parsed with pglast; any other goes to sqlglot).
POSTGRES_DIALECTS = frozenset({"postgres", "postgresql"})


def check_dialect(value: str, source: str = "--dialect") -> None:
    if value in POSTGRES_DIALECTS:
        return
    from .dialects import known_dialects

    if value not in known_dialects():
        raise ConfigError(f"{source}: unknown dialect '{value}' (choose from postgres, "
                          f"{', '.join(d for d in known_dialects() if d != 'postgres')})")


def load_config(explicit: str | None, start: str | os.PathLike[str]) -> Config:
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(f"{explicit}: config file not found")
        data = _read(explicit)
        if os.path.basename(explicit) == "pyproject.toml":
            data = data.get("tool", {}).get("sqlsafe", {})
        return from_mapping(data, explicit)
    found = find_config(start)
    if found is None:
        return Config()
    path, data = found
    return from_mapping(data, path)
