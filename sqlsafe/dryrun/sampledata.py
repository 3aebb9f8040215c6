"""Synthetic rows for the dry run: fill every empty user table with N rows its constraints accept.

An empty database hides the failures that only existing rows reveal (a NOT NULL column added
without a default, a UNIQUE index over duplicated values, a CHECK the old rows violate, a type
change that cannot convert them). ``fill`` puts N rows into every user table that has none, so
the replay that follows meets them the way production would.

How rows are made:

- one ``INSERT ... SELECT ... FROM generate_series(1, N)`` per table: the server generates the
  rows, which is two orders of magnitude faster than row-by-row inserts from Python;
- every value is an expression of the row number ``g.i``: columns in a UNIQUE index or PRIMARY
  KEY get distinct values, other columns deliberately repeat (each value about twice), because
  production data does and a ``CREATE UNIQUE INDEX`` over a non-unique column should fail here
  as it would there; nullable columns get a NULL every tenth row for the same reason;
- identity, serial, generated and defaulted columns are left to the server;
- foreign keys: tables are filled parents first (a topological sort of ``pg_constraint``
  ``contype = 'f'``) and each child row picks an existing parent key;
- CHECK constraints are tried, not parsed: on a violation the column is given values that
  satisfy the check (found by evaluating it over candidates), else NULL, else the table is
  skipped with a note.

psycopg is imported only by the dry run, never on the lint path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from .result import MigrationResult

__all__ = ["Filled", "explain_failure", "fill", "with_explanation"]

# How often a nullable column is NULL (every NULL_EVERY-th row).
NULL_EVERY = 10
# A multiplier coprime with most N: spreads repeated values over the table instead of
# grouping them, so duplicates are not adjacent (index builds see realistic input).
_SPREAD = 7919
_MAX_ATTEMPTS = 12


class Filled(dict[str, int]):
    """Rows inserted per table (``schema.table``), plus notes on the tables left empty."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []


@dataclass
class _Column:
    attnum: int
    name: str
    typid: int
    typmod: int
    type_sql: str  # format_type(): what we cast to
    not_null: bool
    default: str | None
    identity: bool
    generated: bool
    unique: bool = False
    fk: int | None = None  # index into _Table.fks


@dataclass
class _ForeignKey:
    name: str
    columns: list[str]
    parent: str  # qualified, quoted
    parent_key: str  # schema.table unquoted, for the dependency order
    ref_columns: list[str]
    unique: bool = False  # the referencing columns are unique (one-to-one)


@dataclass
class _Check:
    name: str
    columns: list[str]
    expr: str  # pg_get_expr of conbin: refers to columns by name
    definition: str


@dataclass
class _Table:
    oid: int
    schema: str
    name: str
    columns: list[_Column] = field(default_factory=list)
    fks: list[_ForeignKey] = field(default_factory=list)
    checks: list[_Check] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def quoted(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# Catalog

_TABLES_SQL = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""

_COLUMNS_SQL = """
SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod,
       format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '', a.attgenerated <> ''
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Columns of every unique index (PRIMARY KEY and UNIQUE constraints have one): indkey for plain
# columns, pg_depend for the columns used inside expressions (unique (lower(email))); indexes
# made by a constraint record their column dependencies on the constraint, not in pg_depend.
_UNIQUE_SQL = """
SELECT i.indrelid, k.attnum
FROM pg_index i CROSS JOIN unnest(i.indkey) AS k(attnum)
WHERE i.indisunique AND i.indrelid = ANY(%s) AND k.attnum > 0
UNION
SELECT i.indrelid, d.refobjsubid
FROM pg_index i JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
  AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
WHERE i.indisunique AND i.indrelid = ANY(%s)
"""

_CONSTRAINTS_SQL = """
SELECT c.conrelid, c.conname, c.contype,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
       c.confrelid, fn.nspname, fc.relname,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o),
       pg_get_expr(c.conbin, c.conrelid), pg_get_constraintdef(c.oid)
FROM pg_constraint c
LEFT JOIN pg_class fc ON fc.oid = c.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE c.conrelid = ANY(%s) AND c.contype IN ('f', 'c')
ORDER BY c.conrelid, c.conname
"""

_TYPE_SQL = """
SELECT t.typname, t.typtype, t.typcategory, t.typelem, t.typbasetype, t.typtypmod,
       format_type(t.oid, NULL), n.nspname
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = %s
"""


def _load_tables(conn: psycopg.Connection) -> list[_Table]:
    tables = [_Table(int(oid), schema, name) for oid, schema, name in conn.execute(_TABLES_SQL)]
    if not tables:
        return []
    by_oid = {t.oid: t for t in tables}
    oids = list(by_oid)
    for relid, attnum, name, typid, typmod, type_sql, notnull, default, ident, gen in conn.execute(
        _COLUMNS_SQL, (oids,)
    ):
        by_oid[relid].columns.append(
            _Column(attnum, name, int(typid), int(typmod), type_sql, bool(notnull), default,
                    bool(ident), bool(gen))
        )
    unique = {(int(r), int(a)) for r, a in conn.execute(_UNIQUE_SQL, (oids, oids))}
    for t in tables:
        for c in t.columns:
            c.unique = (t.oid, c.attnum) in unique
    for relid, name, kind, cols, _fref, fschema, frel, fcols, expr, definition in conn.execute(
        _CONSTRAINTS_SQL, (oids,)
    ):
        t = by_oid[relid]
        if kind == "c":
            t.checks.append(_Check(name, list(cols), expr or "", definition))
            continue
        fk = _ForeignKey(name, list(cols), f"{_ident(fschema)}.{_ident(frel)}",
                         f"{fschema}.{frel}", list(fcols))
        columns = {c.name: c for c in t.columns}
        if all(columns[name].fk is None for name in fk.columns if name in columns):
            fk.unique = all(columns[name].unique for name in fk.columns if name in columns)
            t.fks.append(fk)
            for name in fk.columns:
                if name in columns:
                    columns[name].fk = len(t.fks) - 1
    return tables


def _order(tables: list[_Table]) -> list[_Table]:
    """Parents before children (Kahn's algorithm); a cycle is broken in name order, its
    back-references then find no parent rows and are NULL where allowed."""
    by_key = {t.key: t for t in tables}
    deps = {t.key: {fk.parent_key for fk in t.fks if fk.parent_key in by_key and
                    fk.parent_key != t.key} for t in tables}
    ordered: list[_Table] = []
    done: set[str] = set()
    while len(ordered) < len(tables):
        ready = [k for k in by_key if k not in done and deps[k] <= done]
        if not ready:  # a cycle: take the first remaining table
            ready = [next(k for k in by_key if k not in done)]
        for k in ready:
            done.add(k)
            ordered.append(by_key[k])
    return ordered


# --------------------------------------------------------------------------------------------
# Values


class _Types:
    """pg_type rows, looked up once per type."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.cache: dict[int, tuple[Any, ...]] = {}
        self.enum_sizes: dict[int, int] = {}

    def get(self, oid: int) -> tuple[Any, ...] | None:
        if oid not in self.cache:
            row = self.conn.execute(_TYPE_SQL, (oid,)).fetchone()
            if row is None:
                return None
            self.cache[oid] = tuple(row)
        return self.cache[oid]

    def enum_size(self, oid: int) -> int:
        if oid not in self.enum_sizes:
            row = self.conn.execute("SELECT count(*) FROM pg_enum WHERE enumtypid = %s",
                                    (oid,)).fetchone()
            self.enum_sizes[oid] = int(row[0]) if row else 0
        return self.enum_sizes[oid]


def _value(types: _Types, typid: int, typmod: int, j: str, col: _Column, seed: int,
           depth: int = 0) -> str | None:
    """An SQL expression of the integer expression ``j`` giving a value of the type, distinct
    for distinct ``j`` where the type allows; None for types we cannot generate."""
    info = types.get(typid)
    if info is None or depth > 3:
        return None
    typname, typtype, category, elem, base, base_mod, shown, _schema = info
    if typtype == "d":  # domain: a value of the base type, cast (its CHECK is tried later)
        inner = _value(types, int(base), int(base_mod), j, col, seed, depth + 1)
        return None if inner is None else f"({inner})::{shown}"
    if typtype == "e":
        size = types.enum_size(typid)
        if size == 0:
            return None
        return f"(enum_range(NULL::{shown}))[1 + (({j}) % {size})]"
    if category == "A" and int(elem):
        inner = _value(types, int(elem), -1, j, col, seed, depth + 1)
        if inner is None:
            return None
        return f"ARRAY[{inner}]::{format_array(shown, typmod, types, typid)}"
    length = typmod - 4 if typmod >= 4 else None
    match typname:
        case "int2":
            return f"(({j}) % 32767)::int2"
        case "int4" | "int8" | "oid":
            return f"({j})::{typname}"
        case "numeric":
            if length is None:
                return f"(({j}) * 1.25)::numeric"
            precision, scale = (length >> 16) & 0xFFFF, length & 0xFFFF
            digits = min(precision - scale, 15)
            if digits <= 0:
                return "0::numeric"
            return f"(({j}) % {10 ** digits - 1})::numeric({precision},{scale})"
        case "float4" | "float8":
            return f"(({j}) * 1.5)::{typname}"
        case "money":
            return f"(({j}) % 100000)::numeric::money"
        case "bool":
            return f"(({j}) % 2 = 0)"
        case "text" | "varchar" | "bpchar" | "name" | "citext":
            limit = length if typname in ("varchar", "bpchar") else None
            if typname == "bpchar" and limit is None:
                limit = 1  # bare char is char(1)
            return _text_value(j, col.name, limit, shown)
        case "date":
            return f"(date '2024-01-01' + ({j})::int + {col.attnum})"
        case "timestamp" | "timestamptz":
            # The column number shifts each column by an hour: created_at < updated_at style
            # CHECKs hold for columns declared in that order.
            lit = "timestamp" if typname == "timestamp" else "timestamptz"
            return (f"({lit} '2024-01-01 00:00:00' + ({j}) * interval '1 second' "
                    f"+ {col.attnum} * interval '1 hour')")
        case "time" | "timetz":
            return f"(time '00:00' + (({j}) % 86400) * interval '1 second')::{typname}"
        case "interval":
            return f"(({j}) * interval '1 minute')"
        case "uuid":
            # md5 gives 32 hex digits, a valid uuid text; no pgcrypto/uuid-ossp needed.
            return f"md5({_literal(f'{seed}:{col.name}:')} || ({j}))::uuid"
        case "json":
            return f"json_build_object('n', ({j}))"
        case "jsonb":
            return f"jsonb_build_object('n', ({j}))"
        case "inet" | "cidr":
            return (f"('10.' || ((({j}) / 65536) % 256) || '.' || ((({j}) / 256) % 256) || '.' "
                    f"|| (({j}) % 256))::{typname}")
        case "macaddr":
            return f"('08:00:' || regexp_replace(lpad(to_hex(({j}) % 4294967296), 8, '0'), " \
                   f"'(..)(?!$)', '\\1:', 'g'))::macaddr"
        case "bytea":
            return f"decode(md5(({j})::text), 'hex')"
        case "tsvector":
            return f"to_tsvector('simple', 'word' || ({j}))"
        case "point":
            return f"point(({j}), ({j}))"
        case "bit" | "varbit":
            bits = typmod if typname == "bit" and typmod > 0 else 1  # bit's typmod is its length
            target = f"bit({bits})" if typname == "bit" else "varbit"
            return f"(({j})::int::bit(32))::{target}"
        case "int4range" | "int8range" | "numrange":
            return f"{typname}(({j}), ({j}) + 10)"
        case "daterange":
            return f"daterange(date '2024-01-01' + ({j})::int, date '2024-01-02' + ({j})::int)"
        case "tstzrange" | "tsrange":
            lit = "timestamptz" if typname == "tstzrange" else "timestamp"
            return (f"{typname}({lit} '2024-01-01' + ({j}) * interval '1 minute', "
                    f"{lit} '2024-01-01' + ({j} + 1) * interval '1 minute')")
    if category == "S":  # other string types from extensions: cast from text
        return f"({_text_value(j, col.name, None, 'text')})::{shown}"
    return None


def format_array(shown: str, typmod: int, types: _Types, typid: int) -> str:
    """The array type with its element's typmod (varchar(5)[]), which format_type of the
    type oid alone drops."""
    row = types.conn.execute("SELECT format_type(%s, %s)", (typid, typmod)).fetchone()
    return str(row[0]) if row else shown


def _text_value(j: str, name: str, limit: int | None, cast: str) -> str:
    # Digits of j stay in the value whatever the limit, so distinct j stay distinct.
    prefix = re.sub(r"[^a-z0-9]+", "_", name.lower())[:12] + "-"
    if limit is not None and limit < len(prefix) + 8:
        prefix = ""
    expr = f"{_literal(prefix)} || ({j})" if prefix else f"({j})::text"
    if limit is not None:
        expr = f"left({expr}, {limit})"
    return f"({expr})::{cast}"


# --------------------------------------------------------------------------------------------
# Building the INSERT


def _leave_to_server(c: _Column) -> bool:
    if c.identity or c.generated:
        return True
    if c.default is None or c.fk is not None:
        return False
    if not c.unique:
        return True
    # A unique column keeps its default only when the default differs per row (nextval,
    # gen_random_uuid): a constant or now() would give every row the same value.
    return bool(re.search(r"nextval\(|uuid|random\(|clock_timestamp\(", c.default, re.I))


@dataclass
class _Plan:
    rows: int
    offset: int = 0  # rows the table already has: unique values start after them
    overrides: dict[str, str] = field(default_factory=dict)  # column -> SQL expression
    pools: dict[str, str] = field(default_factory=dict)  # column -> temp table holding values


def _build(table: _Table, plan: _Plan, types: _Types, seed: int) -> str | None:
    n = plan.rows
    cards = max(1, n // 2)
    unique_j = f"(g.i + {seed + plan.offset})"
    repeat_j = f"(1 + ((g.i::bigint * {_SPREAD} + {seed}) % {cards}))"
    targets: list[str] = []
    values: list[str] = []
    joins: list[str] = []
    for k, fk in enumerate(table.fks):
        cols = ", ".join(_ident(c) for c in fk.ref_columns)
        pick = "(g.i - 1)" if fk.unique else f"((g.i::bigint * {_SPREAD} + {seed}))"
        joins.append(
            f"CROSS JOIN (SELECT count(*) AS c FROM {fk.parent}) pc{k} "
            f"LEFT JOIN (SELECT {cols}, row_number() OVER (ORDER BY {cols}) - 1 AS rn "
            f"FROM {fk.parent}) p{k} ON p{k}.rn = {pick} % NULLIF(pc{k}.c, 0)"
        )
    for c in table.columns:
        if c.name in plan.overrides:
            expr = plan.overrides[c.name]
        elif c.name in plan.pools:
            k = len(joins)
            pool = plan.pools[c.name]
            joins.append(f"CROSS JOIN (SELECT count(*) AS c FROM {pool}) vc{k} "
                         f"JOIN {pool} v{k} ON v{k}.idx = 1 + (g.i - 1) % vc{k}.c")
            expr = f"v{k}.v"
        elif _leave_to_server(c):
            continue
        elif c.fk is not None:
            fk = table.fks[c.fk]
            expr = f"p{c.fk}.{_ident(fk.ref_columns[fk.columns.index(c.name)])}"
        else:
            value = _value(types, c.typid, c.typmod, unique_j if c.unique else repeat_j, c, seed)
            if value is None:
                if c.not_null and c.default is None:
                    return None
                continue
            expr = value
        if not c.not_null and not c.unique and c.name not in plan.overrides:
            expr = f"CASE WHEN g.i % {NULL_EVERY} = 0 THEN NULL ELSE {expr} END"
        targets.append(_ident(c.name))
        values.append(expr)
    columns = f" ({', '.join(targets)})" if targets else ""
    select = ", ".join(values)
    return (f"INSERT INTO {table.quoted}{columns} SELECT {select} "
            f"FROM generate_series(1, {n}) AS g(i) {' '.join(joins)}")


def _unsupported(table: _Table, types: _Types) -> str | None:
    for c in table.columns:
        if _leave_to_server(c) or c.fk is not None or not c.not_null or c.default is not None:
            continue
        if _value(types, c.typid, c.typmod, "1", c, 0) is None:
            return f"column {c.name} ({c.type_sql}) is NOT NULL and its type is not generated"
    return None


def _rows_for(conn: psycopg.Connection, table: _Table, rows: int) -> tuple[int, str | None]:
    """Rows to insert given the parents: a one-to-one child cannot have more rows than its
    parent; a NOT NULL reference to an empty parent cannot have any."""
    columns = {c.name: c for c in table.columns}
    for fk in table.fks:
        row = conn.execute(f"SELECT count(*) FROM {fk.parent}").fetchone()
        parent_rows = int(row[0]) if row else 0
        required = any(columns[c].not_null for c in fk.columns if c in columns)
        if parent_rows == 0 and required:
            return 0, f"references {fk.parent_key}, which has no rows"
        if fk.unique and parent_rows:
            rows = min(rows, parent_rows)
    return rows, None


# --------------------------------------------------------------------------------------------
# CHECK fallback


def _satisfying_pool(conn: psycopg.Connection, table: _Table, col: _Column, check: _Check,
                     types: _Types, plan: _Plan, seed: int, serial: int) -> str | None:
    """A temp table of values of ``col`` that pass ``check``, or None when none is found.

    Candidates are the column's usual values over a range of row numbers plus the literals the
    CHECK mentions (IN lists, range bounds and their neighbours); the CHECK itself filters them,
    evaluated over a subquery whose output column carries the column's name."""
    import psycopg

    j = "(g.i + 0)" if col.unique else "g.i"
    value = _value(types, col.typid, col.typmod, j, col, seed)
    candidates: list[str] = []
    if value is not None:
        candidates.append(f"SELECT {value} AS v, g.i AS o FROM generate_series(1, "
                          f"{max(plan.rows * 4, 100)}) AS g(i)")
    literals: list[str] = re.findall(r"'((?:[^']|'')*)'", check.definition)
    for number in re.findall(r"(?<![\w.'])-?\d+(?:\.\d+)?(?![\w'])", check.definition):
        x = float(number)
        literals += [number, repr(x + 1) if "." in number else str(int(x) + 1),
                     repr(x - 1) if "." in number else str(int(x) - 1)]
    for order, lit in enumerate(dict.fromkeys(literals)):
        try:
            with conn.transaction():
                conn.execute(f"SELECT {_literal(lit)}::{col.type_sql}")
        except psycopg.Error:
            continue
        candidates.append(f"SELECT {_literal(lit)}::{col.type_sql}, {-1000000 + order}")
    if not candidates:
        return None
    pool = f"pg_temp.{_ident(f'sqlsafe_pool_{serial}')}"
    union = " UNION ALL ".join(candidates)
    try:
        with conn.transaction():
            conn.execute(f"DROP TABLE IF EXISTS {pool}")
            conn.execute(
                f"CREATE TEMP TABLE {pool.split('.', 1)[1]} AS "
                f"SELECT row_number() OVER (ORDER BY o) AS idx, v FROM ("
                f"SELECT DISTINCT ON (s.{_ident(col.name)}) s.{_ident(col.name)} AS v, s.o "
                f"FROM ({union}) AS s({_ident(col.name)}, o) "
                f"WHERE ({check.expr}) IS NOT FALSE AND s.{_ident(col.name)} IS NOT NULL "
                f"ORDER BY s.{_ident(col.name)}, s.o) AS d"
            )
            conn.execute(f"CREATE INDEX ON {pool} (idx)")
            row = conn.execute(f"SELECT count(*) FROM {pool}").fetchone()
    except psycopg.Error:
        return None
    count = int(row[0]) if row else 0
    if count == 0:
        return None
    if col.unique and count < plan.rows:
        plan.rows = count  # a unique column cannot repeat: fewer rows, all valid
    return pool


def _on_check_violation(conn: psycopg.Connection, table: _Table, name: str | None,
                        types: _Types, plan: _Plan, seed: int, serial: int) -> str | None:
    """Adjust ``plan`` after CHECK ``name`` failed; return why the table must be skipped."""
    check = next((c for c in table.checks if c.name == name), None)
    columns = {c.name: c for c in table.columns}
    if check is None and name is None:
        # "no partition of relation ... found for row": treat the leaves' partition
        # constraints, OR-ed, as one CHECK over the partition key.
        check = _partition_check(conn, table)
    if check is None:
        # A domain's CHECK: NULL the nullable columns of that domain's type.
        domain_cols = [c for c in table.columns if c.not_null is False and
                       c.name not in plan.overrides and _has_domain_check(conn, c.typid, name)]
        if domain_cols:
            for c in domain_cols:
                plan.overrides[c.name] = "NULL"
            return None
        return f"constraint {name} rejects the generated rows"
    cols = [columns[c] for c in check.columns if c in columns]
    free = [c for c in cols if c.name not in plan.overrides and c.name not in plan.pools]
    if len(cols) == 1 and free and free[0].fk is None:
        pool = _satisfying_pool(conn, table, free[0], check, types, plan, seed, serial)
        if pool is not None:
            plan.pools[free[0].name] = pool
            return None
    nullable = [c for c in free if not c.not_null and c.name not in plan.overrides]
    if nullable:
        for c in nullable:
            plan.overrides[c.name] = "NULL"
            plan.pools.pop(c.name, None)
        return None
    return f"no generated value satisfies {check.definition}"


def _partition_check(conn: psycopg.Connection, table: _Table) -> _Check | None:
    row = conn.execute(
        "SELECT ARRAY(SELECT a.attname FROM unnest(p.partattrs) k(n) JOIN pg_attribute a "
        "ON a.attrelid = p.partrelid AND a.attnum = k.n), "
        "ARRAY(SELECT pg_get_partition_constraintdef(t.relid) FROM pg_partition_tree(%s) t "
        "WHERE t.isleaf AND pg_get_partition_constraintdef(t.relid) IS NOT NULL) "
        "FROM pg_partitioned_table p WHERE p.partrelid = %s", (table.oid, table.oid),
    ).fetchone()
    if row is None or not row[1] or len(row[0]) != 1:
        return None  # no leaves, or an expression or multi-column key
    expr = " OR ".join(f"({c})" for c in row[1])
    return _Check("partition bounds", list(row[0]), expr, expr)


def _has_domain_check(conn: psycopg.Connection, typid: int, name: str | None) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contypid = %s AND conname = %s)",
        (typid, name),
    ).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------------------------
# Entry point


def fill(conn: psycopg.Connection, rows: int, *, seed: int = 0,
         tables: set[str] | None = None, top_up: bool = False) -> Filled:
    """Insert ``rows`` rows into every user table that has none (or only into ``tables``,
    given as ``schema.table``) and return the rows inserted per table.

    ``top_up`` also brings tables that have fewer rows up to ``rows`` (the estimates need
    every table at the size measured, whatever --setup put in it); new unique values start
    after the existing row count, which avoids the usual collisions, not every one.

    Tables that cannot be filled are left empty and explained in ``result.notes``. Each table
    is inserted in its own transaction (a savepoint when ``conn`` is already in one), so one
    table's failure never undoes another's rows."""
    import psycopg
    from psycopg import errors

    filled = Filled()
    if rows <= 0:
        return filled
    types = _Types(conn)
    serial = 0
    pools: list[str] = []
    try:
        for table in _order(_load_tables(conn)):
            if tables is not None and table.key not in tables:
                continue
            have = 0
            if top_up:
                row = conn.execute(f"SELECT count(*) FROM {table.quoted}").fetchone()
                have = int(row[0]) if row else 0
                if have >= rows:
                    continue
            elif conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table.quoted})").fetchone() != \
                    (False,):
                continue  # has rows already (from --setup or an earlier fill): keep them
            reason = _unsupported(table, types)
            n, why = _rows_for(conn, table, rows - have)
            reason = reason or why
            plan = _Plan(n, offset=have)
            attempts = 0
            while reason is None and attempts < _MAX_ATTEMPTS:
                attempts += 1
                query = _build(table, plan, types, seed)
                if query is None:
                    reason = "a NOT NULL column has a type that is not generated"
                    break
                try:
                    with conn.transaction():
                        cur = conn.execute(query)
                    filled[table.key] = cur.rowcount
                    break
                except errors.CheckViolation as exc:
                    serial += 1
                    reason = _on_check_violation(conn, table, exc.diag.constraint_name, types,
                                                 plan, seed, serial)
                    pools += plan.pools.values()
                except psycopg.Error as exc:
                    reason = _first_line(exc)
            else:
                if reason is None:
                    reason = "its CHECK constraints reject every generated row"
            if reason is not None:
                filled.notes.append(f"{table.key}: left empty: {reason}")
            elif plan.rows < rows and table.key in filled:
                filled.notes.append(
                    f"{table.key}: {plan.rows} rows (its constraints allow no more)")
    finally:
        for pool in dict.fromkeys(pools):
            if conn.info.transaction_status == 0 or conn.info.transaction_status == 2:
                conn.execute(f"DROP TABLE IF EXISTS {pool}")
    return filled


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Explaining failures that rows revealed

_COLUMN_NULLS = re.compile(r'column "([^"]+)" of relation "([^"]+)" contains null values')
_UNIQUE_INDEX = re.compile(r'could not create unique index "([^"]+)"')
_DUP_KEY = re.compile(r"Key \((.+?)\)=\((.*)\) is duplicated")
_CHECK = re.compile(r'check constraint "([^"]+)" of relation "([^"]+)" is violated')


def explain_failure(sqlstate: str | None, message: str, sql: str = "",
                    detail: str | None = None) -> str | None:
    """A finding-like sentence for a failure that existing rows caused, or None.

    ``message`` is the server's primary message, ``detail`` its DETAIL line if any."""
    text = " ".join(sql.split()).lower()
    match sqlstate:
        case "23502":  # not_null_violation
            m = _COLUMN_NULLS.search(message)
            column = m.group(1) if m else "the column"
            if "add column" in text or (" add " in text and "set not null" not in text):
                return (f"column {column} is NOT NULL with no default: existing rows violate it "
                        f"— add it nullable (or with a default), backfill, then SET NOT NULL")
            return (f"column {column} has NULLs in existing rows: SET NOT NULL fails — backfill "
                    f"first (batched UPDATE), then add CHECK ({column} IS NOT NULL) NOT VALID, "
                    f"VALIDATE it, and SET NOT NULL")
        case "23505":  # unique_violation
            m = _DUP_KEY.search(detail or message)
            key = m.group(1) if m else "the key"
            return (f"existing rows have duplicate values in ({key}): the UNIQUE index cannot be "
                    f"built — deduplicate first (SELECT {key}, count(*) ... GROUP BY {key} "
                    f"HAVING count(*) > 1)")
        case "23514":  # check_violation
            m = _CHECK.search(message)
            name = m.group(1) if m else "the CHECK"
            return (f"existing rows violate {name}: fix or backfill them first, or add the "
                    f"constraint NOT VALID and VALIDATE it after the cleanup")
        case "23503":  # foreign_key_violation
            return ("existing rows reference missing parent rows: add the foreign key NOT VALID, "
                    "clean up the orphans, then VALIDATE CONSTRAINT")
        case "22001" | "22003" | "22P02" | "22007" | "22008" | "42804":
            return ("existing values do not convert to the new type or length: clean them up "
                    "first, or add a new column, backfill it with a checked conversion and swap")
    return None


_UNIQUE_COLUMNS = re.compile(r"\bON\s+(?:ONLY\s+)?\S+\s*(?:USING\s+\w+\s*)?\((.*)\)", re.I | re.S)


def with_explanation(result: MigrationResult) -> MigrationResult:
    """``result`` with ``extras["explanation"]`` set when it failed in a way existing rows
    explain (NOT NULL without default, duplicates under a new UNIQUE index, ...)."""
    from dataclasses import replace

    if result.status != "failed" or result.error is None:
        return result
    failing = next((s for s in result.statements if s.error is not None), None)
    sql = failing.sql if failing is not None else ""
    detail = None
    if result.error.sqlstate == "23505":
        m = _UNIQUE_COLUMNS.search(sql)
        if m:  # the server's DETAIL names the key; the statement names it too
            detail = f"Key ({' '.join(m.group(1).split())})=() is duplicated"
    text = explain_failure(result.error.sqlstate, result.error.message, sql, detail)
    if text is None:
        return result
    return replace(result, extras={**result.extras, "explanation": text})
