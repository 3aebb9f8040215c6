"""One pglast visitor that turns a parsed statement into normalized actions (``nodes.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import parsenodes as pn

from . import nodes as n

# Functions whose result differs per row: a column default calling one of them makes
# ADD COLUMN rewrite the table even on PostgreSQL 11+ (the "fast default" needs one value).
VOLATILE_FUNCTIONS = frozenset(
    {
        "nextval", "random", "random_normal", "gen_random_uuid", "uuid_generate_v1",
        "uuid_generate_v1mc", "uuid_generate_v4", "uuidv4", "uuidv7", "clock_timestamp",
        "timeofday", "txid_current", "pg_current_xact_id", "setseed", "currval", "lastval",
    }
)

# Functions known to be STABLE or IMMUTABLE: evaluated once for ADD COLUMN ... DEFAULT.
NON_VOLATILE_FUNCTIONS = frozenset(
    {
        "now", "transaction_timestamp", "statement_timestamp", "current_timestamp",
        "current_date", "localtimestamp", "to_timestamp", "to_date", "lower", "upper",
        "coalesce", "jsonb_build_object", "json_build_object", "jsonb_build_array",
        "array", "concat", "md5", "length", "date_trunc", "make_interval", "timezone",
        "current_setting", "to_jsonb", "to_json", "abs", "round", "greatest", "least",
        "nullif", "replace", "substring", "trim", "btrim", "format", "current_user",
        "session_user", "current_schema", "pg_catalog.now", "interval", "extract",
        "inet", "array_fill",
    }
)

_CONSTR_KIND = {
    pn.ConstrType.CONSTR_CHECK: "check",
    pn.ConstrType.CONSTR_FOREIGN: "foreign",
    pn.ConstrType.CONSTR_UNIQUE: "unique",
    pn.ConstrType.CONSTR_PRIMARY: "primary",
    pn.ConstrType.CONSTR_EXCLUSION: "exclude",
    pn.ConstrType.CONSTR_NOTNULL: "notnull",
}

_OBJTYPE = {
    "OBJECT_TABLE": "table", "OBJECT_INDEX": "index", "OBJECT_SCHEMA": "schema",
    "OBJECT_VIEW": "view", "OBJECT_MATVIEW": "materialized view", "OBJECT_SEQUENCE": "sequence",
    "OBJECT_TYPE": "type", "OBJECT_DOMAIN": "domain", "OBJECT_FUNCTION": "function",
    "OBJECT_PROCEDURE": "procedure", "OBJECT_ROUTINE": "routine", "OBJECT_TRIGGER": "trigger",
    "OBJECT_EXTENSION": "extension", "OBJECT_COLUMN": "column", "OBJECT_DATABASE": "database",
    "OBJECT_TABCONSTRAINT": "constraint", "OBJECT_POLICY": "policy", "OBJECT_ROLE": "role",
    "OBJECT_FOREIGN_TABLE": "foreign table", "OBJECT_RULE": "rule", "OBJECT_AGGREGATE": "aggregate",
    "OBJECT_OPERATOR": "operator", "OBJECT_COLLATION": "collation", "OBJECT_CAST": "cast",
    "OBJECT_TABLESPACE": "tablespace", "OBJECT_PUBLICATION": "publication",
    "OBJECT_SUBSCRIPTION": "subscription", "OBJECT_LANGUAGE": "language",
    "OBJECT_EVENT_TRIGGER": "event trigger", "OBJECT_STATISTIC_EXT": "statistics",
    "OBJECT_ATTRIBUTE": "attribute", "OBJECT_DOMCONSTRAINT": "domain constraint",
}

_LOCK_MODES = {
    1: "AccessShareLock", 2: "RowShareLock", 3: "RowExclusiveLock",
    4: "ShareUpdateExclusiveLock", 5: "ShareLock", 6: "ShareRowExclusiveLock",
    7: "ExclusiveLock", 8: "AccessExclusiveLock",
}

_SERIAL = {"serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8",
           "smallserial": "int2", "serial2": "int2"}


def objtype_name(value: Any) -> str:
    name = getattr(value, "name", str(value))
    return _OBJTYPE.get(name, name.removeprefix("OBJECT_").lower().replace("_", " "))


def deparse(node: Any) -> str:
    """The node as pglast's ``RawStream()(node)`` prints it, or "" when that fails.

    Constants and CURRENT_TIMESTAMP-style keywords, half of what we deparse, are spelled here
    directly. Anything else goes to pglast's printer without ``RawStream.__call__``, whose
    ``populate_ancestors`` builds a Visitor class and runs ``inspect.getmembers`` on every
    call: that cost more than printing. ``tests/model/test_deparse.py`` holds both paths to
    RawStream's text over the corpus.
    """
    if node is None:
        return ""
    simple = _simple_sql(node)
    if simple is not None:
        return simple
    try:
        from pglast.stream import RawStream
        from pglast.visitors import Ancestor

        if not isinstance(node, ast.Node):
            return str(RawStream()(node))
        # What RawStream.__call__ does for one node: the node is item 0 of a 1-tuple tree.
        _populate_ancestors(node, Ancestor(Ancestor(), (node,), 0))
        stream = RawStream()
        stream.print_node(node)
        return stream.getvalue()
    except Exception:  # deparsing is best effort; only used in messages
        return ""


def _populate_ancestors(root: Any, root_ancestors: Any) -> None:
    """Set ``ancestors`` on every node below ``root`` as ``pglast.visitors.populate_ancestors``
    does: one link per node attribute and one per tuple index (tuples nest)."""
    from pglast.visitors import Ancestor

    node_type = ast.Node
    todo = [(root, root_ancestors)]
    pop, push = todo.pop, todo.append
    while todo:
        value, ancestors = pop()
        if isinstance(value, node_type):
            value.ancestors = ancestors
            for member in value:
                child = getattr(value, member)
                if isinstance(child, (node_type, tuple)):
                    push((child, Ancestor(ancestors, value, member)))
        else:
            for index, item in enumerate(value):
                if isinstance(item, (node_type, tuple)):
                    push((item, Ancestor(ancestors, value, index)))


# pglast's SQLValueFunction printer, for the operators without a precision.
_SQL_VALUE_FUNCTIONS = {
    "SVFOP_CURRENT_DATE": "CURRENT_DATE", "SVFOP_CURRENT_TIME": "CURRENT_TIME",
    "SVFOP_CURRENT_TIMESTAMP": "CURRENT_TIMESTAMP", "SVFOP_LOCALTIME": "LOCALTIME",
    "SVFOP_LOCALTIMESTAMP": "LOCALTIMESTAMP", "SVFOP_CURRENT_ROLE": "CURRENT_ROLE",
    "SVFOP_CURRENT_USER": "CURRENT_USER", "SVFOP_USER": "USER",
    "SVFOP_SESSION_USER": "SESSION_USER", "SVFOP_CURRENT_CATALOG": "CURRENT_CATALOG",
    "SVFOP_CURRENT_SCHEMA": "CURRENT_SCHEMA",
}


# Functions that column defaults call without arguments. pglast prints such a call as the
# bare name and "()": the names are lower case, not keywords, and have no special printer.
_NULLARY_FUNCTIONS = frozenset({
    "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
    "gen_random_uuid", "uuidv4", "uuidv7", "uuid_generate_v1", "uuid_generate_v1mc",
    "uuid_generate_v4", "random", "txid_current", "pg_backend_pid", "inet_client_addr",
})


def _simple_sql(node: Any) -> str | None:
    """RawStream's text for a lone constant, SQL value function or argument-less call of a
    common default function (``_NULLARY_FUNCTIONS``); None for anything else. pglast quotes a
    string by doubling its single quotes, nothing more (a backslash stays as it is, and no
    E'' prefix is added). Printing these here keeps a run that deparses nothing else from
    importing pglast's printers (a tenth of a one-file lint)."""
    cls = type(node)
    if cls is ast.A_Const:
        if node.isnull:
            return "NULL"
        val = node.val
        vcls = type(val)
        if vcls is ast.Integer:
            return str(val.ival) if type(val.ival) is int else None
        if vcls is ast.String:
            return "'" + val.sval.replace("'", "''") + "'" if type(val.sval) is str else None
        if vcls is ast.Boolean:
            return "TRUE" if val.boolval else "FALSE"
        if vcls is ast.Float:
            return val.fval if type(val.fval) is str else None
        return None
    if cls is ast.SQLValueFunction:
        return _SQL_VALUE_FUNCTIONS.get(getattr(node.op, "name", ""))
    if cls is ast.FuncCall and not node.args and len(node.funcname or ()) == 1:
        name = getattr(node.funcname[0], "sval", None)
        if (name in _NULLARY_FUNCTIONS and not node.agg_star and not node.agg_distinct
                and not node.agg_order and node.agg_filter is None and node.over is None
                and not node.func_variadic):
            return f"{name}()"
    return None


def rel_of(rv: Any) -> n.Rel:
    return n.Rel(rv.relname, getattr(rv, "schemaname", None) or None)


def _sval(node: ast.String) -> str:
    # pglast types String.sval Optional; the parser always fills it ('' for an empty literal).
    return node.sval or ""


def _names(seq: Any) -> list[str]:
    out = []
    for item in seq or ():
        if isinstance(item, ast.String):
            out.append(_sval(item))
        elif isinstance(item, str):
            out.append(item)
    return out


def qualified_name(seq: Any) -> n.Rel:
    parts = _names(seq)
    if not parts:
        return n.Rel("?")
    return n.Rel(parts[-1], parts[-2] if len(parts) > 1 else None)


def type_ref(tn: Any) -> n.TypeRef | None:
    if tn is None:
        return None
    parts = _names(tn.names)
    name = parts[-1] if parts else "?"  # the parser folded unquoted names already
    schema = parts[-2] if len(parts) > 1 and parts[-2] != "pg_catalog" else None
    mods: list[int] = []
    for m in tn.typmods or ():
        val = getattr(m, "val", None)
        if isinstance(val, ast.Integer) and val.ival is not None:  # Optional only in pglast's types
            mods.append(val.ival)
    array = bool(tn.arrayBounds)
    # Built by hand: pglast's deparser is two orders of magnitude slower and this runs for
    # every column of every CREATE TABLE.
    shown = _TYPE_DISPLAY.get(name, name)
    sql = (f"{schema}." if schema else "") + shown + (f"({','.join(map(str, mods))})" if mods else "")
    sql += "[]" if array else ""
    return n.TypeRef(name, tuple(mods), array, sql, schema)


_TYPE_DISPLAY = {"int4": "integer", "int8": "bigint", "int2": "smallint", "bpchar": "char",
                 "float8": "double precision", "float4": "real", "bool": "boolean",
                 "varchar": "varchar", "timestamptz": "timestamptz", "timestamp": "timestamp"}


def iter_nodes(node: Any) -> Iterator[Any]:
    """Every pglast node in a tree, depth first, the root included."""
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from iter_nodes(getattr(node, attr))
    elif isinstance(node, tuple):
        for item in node:
            yield from iter_nodes(item)


def func_names(expr: Any) -> list[str]:
    """Every function called anywhere in an expression (lowercased, unqualified)."""
    found: list[str] = []
    for node in iter_nodes(expr):
        if isinstance(node, ast.FuncCall):
            parts = _names(node.funcname)
            if parts:
                found.append(parts[-1].lower())
        elif isinstance(node, ast.SQLValueFunction):
            found.append("current_timestamp")
    return found


def default_of(expr: Any, known_volatility: dict[str, str] | None = None) -> n.Default:
    sql = deparse(expr)
    if isinstance(expr, ast.A_Const) and getattr(expr, "isnull", False):
        return n.Default(sql or "NULL", False, is_null=True)
    volatile: bool | None = False
    for fn in func_names(expr):
        if fn in VOLATILE_FUNCTIONS:
            return n.Default(sql, True)
        if fn in NON_VOLATILE_FUNCTIONS:
            continue
        vol = (known_volatility or {}).get(fn)
        if vol == "v":
            return n.Default(sql, True)
        if vol in ("i", "s"):
            continue
        volatile = None
    return n.Default(sql, volatile)


def _column_refs(expr: Any) -> set[str]:
    """The distinct column names an expression reads (last part of each ColumnRef)."""
    return {parts[-1] for node in iter_nodes(expr) if isinstance(node, ast.ColumnRef)
            for parts in (_names(node.fields),) if parts}


def constraint_def(c: Any, column: str | None = None) -> n.ConstraintDef | None:
    kind = _CONSTR_KIND.get(c.contype)
    if kind is None:
        return None
    cols = tuple(_names(c.keys)) or ((column,) if column else ())
    if kind == "foreign":
        cols = tuple(_names(c.fk_attrs)) or ((column,) if column else ())
    elif kind == "exclude" and not cols:
        cols = tuple(elem.name for elem, _op in c.exclusions or ()
                     if isinstance(elem, ast.IndexElem) and elem.name)
    elif kind == "check" and not cols:
        # PostgreSQL names a CHECK after its column when the expression reads exactly one.
        read = _column_refs(c.raw_expr)
        if len(read) == 1:
            cols = tuple(read)
    nn_col = None
    if kind == "check":
        e = c.raw_expr
        if (
            isinstance(e, ast.NullTest)
            and getattr(e.nulltesttype, "name", "") == "IS_NOT_NULL"
            and isinstance(e.arg, ast.ColumnRef)
        ):
            parts = _names(e.arg.fields)
            nn_col = parts[-1] if parts else None
    return n.ConstraintDef(
        kind=kind,
        name=c.conname or None,
        columns=cols,
        not_valid=bool(c.skip_validation),
        using_index=c.indexname or None,
        ref_table=rel_of(c.pktable) if c.pktable is not None else None,
        ref_columns=tuple(_names(c.pk_attrs)),
        expr_sql=deparse(c.raw_expr) if c.raw_expr is not None else "",
        not_null_column=nn_col,
        on_delete_cascade=(c.fk_del_action == "c"),
    )


def column_def(cd: Any, known_volatility: dict[str, str] | None = None) -> n.ColumnDef:
    t = type_ref(cd.typeName)
    serial = False
    if t is not None and t.name in _SERIAL and not t.schema:
        serial = True
        t = n.TypeRef(_SERIAL[t.name], t.mods, t.array, t.sql)
    not_null = bool(cd.is_not_null)
    default = None
    generated = identity = pk = unique = False
    inline: list[n.ConstraintDef] = []
    for c in cd.constraints or ():
        if c.contype == pn.ConstrType.CONSTR_NOTNULL:
            not_null = True
        elif c.contype == pn.ConstrType.CONSTR_DEFAULT:
            default = default_of(c.raw_expr, known_volatility)
        elif c.contype == pn.ConstrType.CONSTR_GENERATED:
            # PG 18 adds VIRTUAL generated columns, which are never stored (no rewrite).
            generated = getattr(c, "generated_kind", "s") != "v"
        elif c.contype == pn.ConstrType.CONSTR_IDENTITY:
            identity = True
            not_null = True
        elif c.contype == pn.ConstrType.CONSTR_PRIMARY:
            pk = True
            not_null = True
        elif c.contype == pn.ConstrType.CONSTR_UNIQUE:
            unique = True
        else:
            cdef = constraint_def(c, cd.colname)
            if cdef is not None:
                inline.append(cdef)
    if serial:
        default = n.Default(f"nextval('{cd.colname}_seq')", True)
        not_null = True
    return n.ColumnDef(cd.colname, t, not_null, default, generated, identity, serial, pk, unique,
                       tuple(inline))


def _defel(options: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in options or ():
        if isinstance(d, ast.DefElem) and d.defname is not None:  # Optional only in pglast's types
            out[d.defname] = d.arg
    return out


def _const_str(node: Any) -> str | None:
    val = getattr(node, "val", node)
    if isinstance(val, ast.String):
        return val.sval
    if isinstance(val, ast.Integer):
        return str(val.ival)
    if isinstance(val, ast.Float):
        return val.fval
    if isinstance(val, ast.Boolean):
        return "on" if val.boolval else "off"
    return None


# ---------------------------------------------------------------------------- statements


def normalize(stmt: Any, known_volatility: dict[str, str] | None = None) -> tuple[n.Action, ...]:
    handler = _HANDLERS.get(type(stmt).__name__)
    if handler is None:
        return (n.Other(type(stmt).__name__),)
    return tuple(handler(stmt, known_volatility or {}))


class _Asked(dict[str, str]):
    """Function volatilities nobody knows yet: notes that one was asked for."""

    asked = False

    def __bool__(self) -> bool:
        return True  # ``known_volatility or {}`` must keep this one

    def get(self, key: str, default: Any = None) -> Any:
        self.asked = True
        return default


def normalize_each(statements: Any) -> tuple[tuple[n.Action, ...] | None, ...]:
    """Each parsed statement's actions, normalized without the schema state, or None where
    the result may depend on it: a column default calls a function this module does not
    know, whose volatility a function the migrations create may settle (``normalize`` with
    the state's ``functions`` then). A statement that does not parse has no actions."""
    out: list[tuple[n.Action, ...] | None] = []
    for stmt in statements:
        if stmt.error is not None:
            out.append(())
            continue
        asked = _Asked()
        done = normalize(stmt.node, asked)
        out.append(None if asked.asked else done)
    return tuple(out)


def _create_stmt(s: Any, kv: dict[str, str]) -> list[n.Action]:
    cols: list[n.ColumnDef] = []
    cons: list[n.ConstraintDef] = []
    for elt in s.tableElts or ():
        if isinstance(elt, ast.ColumnDef):
            cols.append(column_def(elt, kv))
        elif isinstance(elt, ast.Constraint):
            c = constraint_def(elt)
            if c is not None:
                cons.append(c)
    parent = None
    inherits: tuple[n.Rel, ...] = ()
    if s.partbound is not None and s.inhRelations:
        parent = rel_of(s.inhRelations[0])
    elif s.inhRelations:
        inherits = tuple(rel_of(r) for r in s.inhRelations)
    persistence = s.relation.relpersistence
    return [n.CreateTable(rel_of(s.relation), bool(s.if_not_exists), tuple(cols), tuple(cons),
                          parent, persistence == "t", persistence == "u",
                          partitioned=s.partspec is not None, inherits=inherits)]


def _create_table_as(s: Any, kv: dict[str, str]) -> list[n.Action]:
    mat = objtype_name(s.objtype) == "materialized view"
    return [_table_from_query(s.into, bool(s.if_not_exists), materialized=mat)]


def _table_from_query(into: Any, if_not_exists: bool, materialized: bool = False) -> n.Action:
    """CREATE TABLE ... AS and SELECT ... INTO: a new table filled by a query."""
    persistence = getattr(into.rel, "relpersistence", "p")
    return n.CreateTable(rel_of(into.rel), if_not_exists, temporary=persistence == "t",
                         unlogged=persistence == "u", as_select=True, materialized=materialized)


def _index_stmt(s: Any, kv: dict[str, str]) -> list[n.Action]:
    cols = [p.name or deparse(p.expr) for p in s.indexParams or ()]
    return [n.CreateIndex(rel_of(s.relation), s.idxname, bool(s.concurrent), bool(s.unique),
                          bool(s.if_not_exists), tuple(cols), s.whereClause is not None,
                          not s.relation.inh, index_shape(s, cols))]


_NULLS = {pn.SortByNulls.SORTBY_NULLS_FIRST: "first", pn.SortByNulls.SORTBY_NULLS_LAST: "last"}


def index_shape(s: Any, keys: list[str]) -> n.IndexShape:
    """A CREATE INDEX as PostgreSQL compares two indexes, less the name (``keys``: each key
    element's column or deparsed expression)."""
    elements: list[tuple[str, ...]] = []
    for p, key in zip(s.indexParams or (), keys, strict=True):
        desc = p.ordering == pn.SortByDir.SORTBY_DESC
        # NULLS LAST is the default ascending, NULLS FIRST descending (CREATE INDEX docs).
        nulls = _NULLS.get(p.nulls_ordering, "first" if desc else "last")
        elements.append((key, ".".join(x.sval for x in p.opclass or ()),
                         ".".join(x.sval for x in p.collation or ()),
                         "desc" if desc else "asc", nulls))
    include = tuple(p.name or "" for p in s.indexIncludingParams or ())
    where = deparse(s.whereClause) if s.whereClause is not None else ""
    return ((s.accessMethod or "btree").lower(), tuple(elements), include, where,
            bool(getattr(s, "nulls_not_distinct", False)))


# Objects dropped as ``ON table``: DROP TRIGGER / POLICY / RULE name ON table.
_TABLE_SCOPED = frozenset({"trigger", "policy", "rule"})


def _drop_stmt(s: Any, kv: dict[str, str]) -> list[n.Action]:
    objtype = objtype_name(s.removeType)
    names: list[str] = []
    rels: list[n.Rel] = []
    on_table = objtype in _TABLE_SCOPED
    for obj in s.objects or ():
        if isinstance(obj, tuple):
            parts = _names(obj)
            names.append(".".join(parts))
            if on_table:  # [schema.]table.object: the table
                parts = parts[:-1]
            if parts:
                rels.append(n.Rel(parts[-1], parts[-2] if len(parts) > 1 else None))
        elif isinstance(obj, ast.String):
            names.append(_sval(obj))
            rels.append(n.Rel(_sval(obj)))
        elif isinstance(obj, ast.ObjectWithArgs):
            parts = _names(obj.objname)
            names.append(".".join(parts))
        elif isinstance(obj, ast.TypeName):
            t = type_ref(obj)
            names.append(t.name if t else "?")
            rels.append(n.Rel(t.name if t else "?", t.schema if t else None))
        else:
            names.append(deparse(obj))
    cascade = getattr(s.behavior, "name", "") == "DROP_CASCADE"
    return [n.Drop(objtype, tuple(names), tuple(rels), bool(s.missing_ok), cascade,
                   bool(s.concurrent))]


_SIMPLE_AT = {
    "AT_SetLogged": lambda rel, c: n.SetLogged(rel, True),
    "AT_SetUnLogged": lambda rel, c: n.SetLogged(rel, False),
    "AT_SetTableSpace": lambda rel, c: n.SetTablespace(rel, c.name),
    "AT_EnableRowSecurity": lambda rel, c: n.RowSecurity(rel, True),
    "AT_DisableRowSecurity": lambda rel, c: n.RowSecurity(rel, False),
    "AT_ForceRowSecurity": lambda rel, c: n.RowSecurity(rel, True, force=True),
    "AT_NoForceRowSecurity": lambda rel, c: n.RowSecurity(rel, False, force=True),
    "AT_SetNotNull": lambda rel, c: n.SetNotNull(rel, c.name),
    "AT_DropNotNull": lambda rel, c: n.DropNotNull(rel, c.name),
    "AT_ValidateConstraint": lambda rel, c: n.ValidateConstraint(rel, c.name),
}


def _alter_cmd(rel: n.Rel, c: Any, objtype: str, kv: dict[str, str]) -> n.Action:
    st = c.subtype.name
    if st in _SIMPLE_AT:
        return _SIMPLE_AT[st](rel, c)
    if st == "AT_AddColumn":
        return n.AddColumn(rel, column_def(c.def_, kv), bool(c.missing_ok))
    if st == "AT_DropColumn":
        return n.DropColumn(rel, c.name, bool(c.missing_ok),
                            getattr(c.behavior, "name", "") == "DROP_CASCADE")
    if st == "AT_AlterColumnType":
        t = type_ref(c.def_.typeName)
        using = deparse(c.def_.raw_default) if c.def_.raw_default is not None else None
        return n.AlterColumnType(rel, c.name, t or n.TypeRef("?"), using)
    if st == "AT_ColumnDefault":
        if c.def_ is None:
            return n.DropDefault(rel, c.name)
        return n.SetDefault(rel, c.name, default_of(c.def_, kv))
    if st == "AT_AddConstraint":
        cdef = constraint_def(c.def_)
        if cdef is None:
            return n.AlterTableOther(rel, st.removeprefix("AT_"), objtype)
        return n.AddConstraint(rel, cdef)
    if st == "AT_DropConstraint":
        return n.DropConstraint(rel, c.name, bool(c.missing_ok),
                                getattr(c.behavior, "name", "") == "DROP_CASCADE")
    if st == "AT_AttachPartition":
        return n.AttachPartition(rel, rel_of(c.def_.name))
    if st in ("AT_AddInherit", "AT_DropInherit"):
        return n.Inherit(rel, rel_of(c.def_), st == "AT_AddInherit")
    if st == "AT_DetachPartition":
        return n.DetachPartition(rel, rel_of(c.def_.name), bool(c.def_.concurrent))
    if st in ("AT_SetRelOptions", "AT_ResetRelOptions"):
        return n.AlterTableOther(rel, st.removeprefix("AT_"), objtype, rel_options(c.def_))
    return n.AlterTableOther(rel, st.removeprefix("AT_"), objtype)


def _alter_table(s: Any, kv: dict[str, str]) -> list[n.Action]:
    rel = rel_of(s.relation)
    objtype = objtype_name(s.objtype)
    return [_alter_cmd(rel, c, objtype, kv) for c in s.cmds or ()]


def _object_name(rel: n.Rel | None, obj: Any) -> str:
    """The name of the object a RENAME or SET SCHEMA names: the relation's, else the object's
    as written (a qualified name, a lone name, or a function with its argument types)."""
    if rel is not None:
        return rel.name
    if isinstance(obj, tuple):
        return ".".join(_names(obj))
    if isinstance(obj, ast.String):
        return _sval(obj)
    return deparse(obj)


def _rename(s: Any, kv: dict[str, str]) -> list[n.Action]:
    objtype = objtype_name(s.renameType)
    rel = rel_of(s.relation) if s.relation is not None else None
    # A sub-object (column, constraint, ...) by its own name; so is an object the parser
    # gives only as a node to deparse, when the statement also names it.
    if objtype in ("column", "constraint", "trigger", "policy", "attribute") or (
            rel is None and not isinstance(s.object, (tuple, ast.String)) and s.subname):
        old = s.subname
    else:
        old = _object_name(rel, s.object)
    return [n.Rename(objtype, rel, old or "?", s.newname)]


def _set_schema(s: Any, kv: dict[str, str]) -> list[n.Action]:
    rel = rel_of(s.relation) if s.relation is not None else None
    return [n.SetSchema(objtype_name(s.objectType), rel, _object_name(rel, s.object) or "?",
                        s.newschema)]


def _truncate(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.Truncate(tuple(rel_of(r) for r in s.relations or ()),
                       getattr(s.behavior, "name", "") == "DROP_CASCADE")]


def _insert(s: Any, kv: dict[str, str]) -> list[n.Action]:
    sel = s.selectStmt
    rows = 0
    from_select = False
    if sel is not None:
        if sel.valuesLists:
            rows = len(sel.valuesLists)
        else:
            from_select = True
    sources: tuple[n.Rel, ...] = ()
    if from_select:
        # Names of WITH queries are not tables.
        ctes = {c.ctename for w in (s.withClause, sel.withClause) if w is not None
                for c in w.ctes or ()}
        sources = tuple(rel_of(f) for f in sel.fromClause or () if isinstance(f, ast.RangeVar)
                        and not (f.schemaname is None and f.relname in ctes))
    return [n.Insert(rel_of(s.relation), s.onConflictClause is not None, from_select, rows,
                     sources)]


def _update(s: Any, kv: dict[str, str]) -> list[n.Action]:
    cols = tuple(t.name for t in s.targetList or () if getattr(t, "name", None))
    return [n.Update(rel_of(s.relation), s.whereClause is not None, cols, deparse(s.whereClause))]


def _delete(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.Delete(rel_of(s.relation), s.whereClause is not None)]


def _copy(s: Any, kv: dict[str, str]) -> list[n.Action]:
    rel = rel_of(s.relation) if s.relation is not None else None
    return [n.Copy(rel, bool(s.is_from), bool(s.is_program), s.filename)]


def _variable_set(s: Any, kv: dict[str, str]) -> list[n.Action]:
    kind = s.kind.name
    name = (s.name or "").lower()
    if kind in ("VAR_RESET", "VAR_RESET_ALL", "VAR_SET_DEFAULT"):
        return [n.SetVar(name, None, bool(s.is_local))]
    if kind == "VAR_SET_MULTI":  # SET TRANSACTION ... / SET SESSION CHARACTERISTICS
        return [n.SetVar(name, "", bool(s.is_local))]
    vals = [v for v in (_const_str(a) for a in s.args or ()) if v is not None]
    return [n.SetVar(name, ", ".join(vals), bool(s.is_local))]


_TX = {
    "TRANS_STMT_BEGIN": "begin", "TRANS_STMT_START": "begin", "TRANS_STMT_COMMIT": "commit",
    "TRANS_STMT_ROLLBACK": "rollback", "TRANS_STMT_SAVEPOINT": "savepoint",
    "TRANS_STMT_RELEASE": "release", "TRANS_STMT_ROLLBACK_TO": "rollback_to",
    "TRANS_STMT_PREPARE": "prepare", "TRANS_STMT_COMMIT_PREPARED": "commit_prepared",
    "TRANS_STMT_ROLLBACK_PREPARED": "rollback_prepared",
}


def _transaction(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.Transaction(_TX.get(s.kind.name, s.kind.name.lower()))]


def _vacuum(s: Any, kv: dict[str, str]) -> list[n.Action]:
    opts = {d.defname for d in s.options or ()}
    rels = tuple(rel_of(v.relation) for v in s.rels or () if v.relation is not None)
    return [n.Vacuum(rels, "full" in opts, not s.is_vacuumcmd)]


def _cluster(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.Cluster(rel_of(s.relation) if s.relation is not None else None)]


def _reindex(s: Any, kv: dict[str, str]) -> list[n.Action]:
    target = s.kind.name.removeprefix("REINDEX_OBJECT_").lower()
    conc = any(d.defname == "concurrently" for d in s.params or ())
    rel = rel_of(s.relation) if s.relation is not None else None
    return [n.Reindex(target, s.name or (str(rel) if rel else ""), rel, conc)]


def _refresh(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.RefreshMatView(rel_of(s.relation), bool(s.concurrent), not s.skipData)]


def _alter_system(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.AlterSystem((s.setstmt.name or "").lower())]


def _grant(s: Any, kv: dict[str, str]) -> list[n.Action]:
    privs = tuple((p.priv_name or "all").lower() for p in s.privileges or ()) or ("all",)
    objects = []
    for o in s.objects or ():
        if isinstance(o, ast.RangeVar):
            objects.append(str(rel_of(o)))
        elif isinstance(o, ast.String):
            objects.append(_sval(o))
        else:
            objects.append(deparse(o))
    grantees = []
    for g in s.grantees or ():
        rt = getattr(g.roletype, "name", "")
        grantees.append("public" if rt == "ROLESPEC_PUBLIC" else (g.rolename or rt.lower()))
    return [n.Grant(bool(s.is_grant), privs, objtype_name(s.objtype), tuple(objects),
                    tuple(grantees))]


def _default_privileges(s: Any, kv: dict[str, str]) -> list[n.Action]:
    schemas: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    for opt in s.options or ():
        if opt.defname == "schemas":
            schemas = tuple(_names(opt.arg))
        elif opt.defname == "roles":
            roles = tuple(getattr(r, "rolename", None) or "public" for r in opt.arg or ())
    (grant,) = _grant(s.action, kv)
    assert isinstance(grant, n.Grant)
    return [n.DefaultPrivileges(schemas, roles, grant)]


def _import_foreign_schema(s: Any, kv: dict[str, str]) -> list[n.Action]:
    # list_type: FDW_IMPORT_SCHEMA_ALL (0), _LIMIT_TO (1), _EXCEPT (2)
    limit_to = int(s.list_type or 0) == 1
    tables = tuple(t.relname for t in s.table_list or ()) if limit_to else ()
    return [n.ImportForeignSchema(s.local_schema, s.remote_schema, s.server_name, tables)]


def _create_stats(s: Any, kv: dict[str, str]) -> list[n.Action]:
    rels = [r for r in s.relations or () if type(r).__name__ == "RangeVar"]
    rel = rel_of(rels[0]) if rels else None
    return [n.CreateObject("statistics", ".".join(_names(s.defnames or ())),
                           if_not_exists=bool(s.if_not_exists), rel=rel)]


def _create_rule(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateObject("rule", str(s.rulename), or_replace=bool(s.replace),
                           rel=rel_of(s.relation))]


def _publication(s: Any, kv: dict[str, str]) -> list[n.Action]:
    """CREATE/ALTER PUBLICATION: SHARE UPDATE EXCLUSIVE on each table it names (added, set
    or dropped); FOR ALL TABLES and TABLES IN SCHEMA lock none."""
    rels = tuple(rel_of(o.pubtable.relation) for o in s.pubobjects or ()
                 if getattr(o, "pubtable", None) is not None)
    return [n.TableLocks("publication", rels, "ShareUpdateExclusiveLock")]


def _grant_role(s: Any, kv: dict[str, str]) -> list[n.Action]:
    roles = tuple(getattr(r, "priv_name", "") or "" for r in s.granted_roles or ())
    grantees = tuple(getattr(g, "rolename", "") or "public" for g in s.grantee_roles or ())
    return [n.Grant(bool(s.is_grant), roles, "role", roles, grantees)]


def _lock(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.Lock(tuple(rel_of(r) for r in s.relations or ()),
                   _LOCK_MODES.get(s.mode, "AccessExclusiveLock"))]


def _do(s: Any, kv: dict[str, str]) -> list[n.Action]:
    opts = _defel(s.args)
    body = _const_str(opts.get("as")) or ""
    lang = _const_str(opts.get("language")) or "plpgsql"
    return [n.DoBlock(body, lang.lower())]


def _create_function(s: Any, kv: dict[str, str]) -> list[n.Action]:
    opts = _defel(s.options)
    lang = (_const_str(opts.get("language")) or "sql").lower()
    sec = opts.get("security")
    definer = bool(getattr(sec, "boolval", False))
    sets = opts.get("set")
    sets_path = False
    for item in (sets if isinstance(sets, tuple) else (sets,)):
        if item is not None and (getattr(item, "name", "") or "").lower() == "search_path":
            sets_path = True
    vol = _const_str(opts.get("volatility")) or "volatile"
    body_node = opts.get("as")
    body = ""
    if isinstance(body_node, tuple) and body_node:
        body = _const_str(body_node[0]) or ""
    elif s.sql_body is not None:
        body = deparse(s.sql_body)
    name = ".".join(_names(s.funcname))
    return [n.CreateFunction(name, bool(s.replace), definer, sets_path, lang, vol[0],
                             bool(s.is_procedure), body)]


def _create_trigger(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateObject("trigger", s.trigname, or_replace=bool(s.replace),
                           rel=rel_of(s.relation))]


def _create_policy(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreatePolicy("policy", s.policy_name, rel=rel_of(s.table),
                           command=(s.cmd_name or "all").lower(),
                           permissive=bool(s.permissive),
                           roles=_role_names(s.roles),
                           using_true=constant_true(s.qual),
                           check_true=constant_true(s.with_check),
                           has_check=s.with_check is not None)]


def _alter_policy(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.AlterPolicy(s.policy_name, rel_of(s.table), _role_names(s.roles),
                          constant_true(s.qual), constant_true(s.with_check))]


def _role_names(roles: Any) -> tuple[str, ...]:
    out = []
    for r in roles or ():
        kind = getattr(getattr(r, "roletype", None), "name", "")
        if kind == "ROLESPEC_PUBLIC":
            out.append("public")
        elif getattr(r, "rolename", None):
            out.append(r.rolename)
        elif kind:  # CURRENT_USER, SESSION_USER, CURRENT_ROLE
            out.append(kind.removeprefix("ROLESPEC_").lower())
    return tuple(out)


# What PostgreSQL's boolean input (parse_bool) reads as true: any prefix of "true"/"yes",
# "on" and "1", case-insensitive (" t " with blanks too).
def bool_text(value: str | None) -> bool | None:
    """The boolean a reloption or a 'literal'::boolean spells; None when it is not one."""
    if value is None:
        return None
    v = value.strip().lower()
    if not v:
        return None
    if "true".startswith(v) or "yes".startswith(v) or v in ("on", "1"):
        return True
    if "false".startswith(v) or ("no".startswith(v)) or v in ("off", "0") or \
            (len(v) >= 2 and "off".startswith(v)):
        return False
    return None


_BOOL_TYPES = frozenset({"bool", "boolean"})


def constant_true(expr: Any) -> bool:
    """The expression is an obvious constant true: TRUE, 't'::boolean, true::bool,
    boolean 'yes', casts of those. Parentheses leave no trace in the tree. Anything with an
    operator, a function or a column is not evaluated: this is not a constant folder."""
    for _ in range(8):  # casts nest; a bound keeps a pathological tree from looping long
        if isinstance(expr, ast.TypeCast):
            names = _names(getattr(expr.typeName, "names", None))
            if not names or names[-1].lower() not in _BOOL_TYPES or \
                    (len(names) > 1 and names[-2].lower() != "pg_catalog") or \
                    getattr(expr.typeName, "arrayBounds", None):
                return False
            expr = expr.arg
            if isinstance(expr, ast.A_Const) and isinstance(expr.val, ast.String):
                return bool_text(expr.val.sval) is True
            continue
        if isinstance(expr, ast.A_Const):
            return isinstance(expr.val, ast.Boolean) and bool(expr.val.boolval)
        return False
    return False


def rel_options(options: Any) -> tuple[tuple[str, str | None], ...]:
    """WITH (...) / SET (...) / RESET (...) storage options: (name, value text). Names are as
    the parser gives them (unquoted ones folded to lower case); PostgreSQL matches them
    case-sensitively."""
    out: list[tuple[str, str | None]] = []
    for d in options or ():
        if not isinstance(d, ast.DefElem) or not d.defname:
            continue
        name = d.defname
        namespace = getattr(d, "defnamespace", None)
        if namespace:
            name = f"{namespace}.{name}"
        arg = d.arg
        if arg is None:
            value = None
        elif isinstance(arg, ast.TypeName):
            # A bare word that is not a reserved keyword (off, yes, local) parses as a type
            # name: WITH (security_invoker = off).
            value = ".".join(_names(arg.names))
        else:
            value = _const_str(arg) or ""
        out.append((name, value))
    return tuple(out)


def _create_schema(s: Any, kv: dict[str, str]) -> list[n.Action]:
    name = s.schemaname or (s.authrole.rolename if s.authrole is not None else "?")
    return [n.CreateObject("schema", name, if_not_exists=bool(s.if_not_exists))]


def _create_seq(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateObject("sequence", str(rel_of(s.sequence)),
                           if_not_exists=bool(s.if_not_exists), rel=rel_of(s.sequence))]


def _create_extension(s: Any, kv: dict[str, str]) -> list[n.Action]:
    schema = _const_str(_defel(s.options).get("schema"))
    return [n.CreateObject("extension", s.extname, if_not_exists=bool(s.if_not_exists),
                           schema=schema)]


def _alter_function(s: Any, kv: dict[str, str]) -> list[n.Action]:
    opts = _defel(s.actions)
    sets = opts.get("set")
    path = (getattr(sets, "name", "") or "").lower() == "search_path"
    sec = opts.get("security")
    definer = None if sec is None else bool(getattr(sec, "boolval", False))
    return [n.AlterFunction(".".join(_names(s.func.objname)), path, definer)]


def _view(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateObject("view", str(rel_of(s.view)), or_replace=bool(s.replace),
                           rel=rel_of(s.view), options=rel_options(s.options),
                           temporary=s.view.relpersistence == "t")]


def _create_enum(s: Any, kv: dict[str, str]) -> list[n.Action]:
    vals = tuple(_sval(v) for v in s.vals or () if isinstance(v, ast.String))
    return [n.CreateType(qualified_name(s.typeName), "enum", values=vals)]


def _composite(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateType(rel_of(s.typevar), "composite")]


def _range(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateType(qualified_name(s.typeName), "range")]


def _domain(s: Any, kv: dict[str, str]) -> list[n.Action]:
    has = any(c.contype == pn.ConstrType.CONSTR_CHECK for c in s.constraints or ())
    return [n.CreateType(qualified_name(s.domainname), "domain", has_constraints=has)]


def _alter_enum(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.AlterEnum(qualified_name(s.typeName), s.newVal, s.oldVal,
                        bool(s.skipIfNewValExists), bool(s.newValNeighbor))]


_DOMAIN_SUB = {"C": "add-constraint", "X": "drop-constraint", "V": "validate",
               "O": "set-not-null", "N": "drop-not-null", "T": "default"}


def _alter_domain(s: Any, kv: dict[str, str]) -> list[n.Action]:
    sub = _DOMAIN_SUB.get(s.subtype, s.subtype)
    not_valid = bool(getattr(s.def_, "skip_validation", False)) if s.def_ is not None else False
    return [n.AlterDomain(qualified_name(s.typeName), sub, not_valid)]


def _create_role(s: Any, kv: dict[str, str]) -> list[n.Action]:
    opts = _defel(s.options)
    pw = opts.get("password")
    literal = pw is not None and _const_str(pw) is not None
    su = bool(getattr(opts.get("superuser"), "boolval", False))
    return [n.CreateRole(s.role, literal, su)]


def _alter_role(s: Any, kv: dict[str, str]) -> list[n.Action]:
    opts = _defel(s.options)
    pw = opts.get("password")
    name = getattr(s.role, "rolename", None) or "?"
    return [n.CreateRole(name, pw is not None and _const_str(pw) is not None,
                         bool(getattr(opts.get("superuser"), "boolval", False)))]


def _createdb(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateDatabase(s.dbname)]


def _create_lang(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return [n.CreateLanguage(s.plname, bool(s.pltrusted))]


def _comment(s: Any, kv: dict[str, str]) -> list[n.Action]:
    objtype = objtype_name(s.objtype)
    rel = None
    if objtype in ("table", "column") and isinstance(s.object, tuple):
        parts = _names(s.object)
        if objtype == "column":
            parts = parts[:-1]
        if parts:
            rel = n.Rel(parts[-1], parts[-2] if len(parts) > 1 else None)
    return [n.Comment(objtype, rel)]


def _select(s: Any, kv: dict[str, str]) -> list[n.Action]:
    if s.intoClause is not None:
        return [_table_from_query(s.intoClause, False)]  # SELECT ... INTO new_table
    rels: list[n.Rel] = []
    for f in s.fromClause or ():
        if isinstance(f, ast.RangeVar):
            rels.append(rel_of(f))
    fns = func_names(s.targetList)
    configs: list[tuple[str, str, bool]] = []
    for node in iter_nodes(s.targetList):
        if not isinstance(node, ast.FuncCall):
            continue
        parts = _names(node.funcname)
        args = node.args or ()
        if parts and parts[-1].lower() == "set_config" and len(args) == 3:
            a = [_const_str(x) for x in args]
            local = isinstance(getattr(args[2], "val", None), ast.Boolean) and \
                args[2].val.boolval
            if a[0] and a[1] is not None:
                configs.append((a[0].lower(), a[1], bool(local)))
    return [n.Select(tuple(rels), tuple(fns), tuple(configs))]


def _create_foreign_table(s: Any, kv: dict[str, str]) -> list[n.Action]:
    return _create_stmt(s.base, kv)


_HANDLERS = {
    "CreateStmt": _create_stmt,
    "CreateForeignTableStmt": _create_foreign_table,
    "CreateTableAsStmt": _create_table_as,
    "IndexStmt": _index_stmt,
    "DropStmt": _drop_stmt,
    "AlterTableStmt": _alter_table,
    "RenameStmt": _rename,
    "AlterObjectSchemaStmt": _set_schema,
    "TruncateStmt": _truncate,
    "InsertStmt": _insert,
    "UpdateStmt": _update,
    "DeleteStmt": _delete,
    "CopyStmt": _copy,
    "VariableSetStmt": _variable_set,
    "TransactionStmt": _transaction,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _cluster,
    "ReindexStmt": _reindex,
    "RefreshMatViewStmt": _refresh,
    "AlterSystemStmt": _alter_system,
    "GrantStmt": _grant,
    "GrantRoleStmt": _grant_role,
    "AlterDefaultPrivilegesStmt": _default_privileges,
    "ImportForeignSchemaStmt": _import_foreign_schema,
    "CreateStatsStmt": _create_stats,
    "RuleStmt": _create_rule,
    "CreatePublicationStmt": _publication,
    "AlterPublicationStmt": _publication,
    "LockStmt": _lock,
    "DoStmt": _do,
    "CreateFunctionStmt": _create_function,
    "AlterFunctionStmt": _alter_function,
    "CreateTrigStmt": _create_trigger,
    "CreatePolicyStmt": _create_policy,
    "AlterPolicyStmt": _alter_policy,
    "CreateSchemaStmt": _create_schema,
    "CreateSeqStmt": _create_seq,
    "CreateExtensionStmt": _create_extension,
    "ViewStmt": _view,
    "CreateEnumStmt": _create_enum,
    "CompositeTypeStmt": _composite,
    "CreateRangeStmt": _range,
    "CreateDomainStmt": _domain,
    "AlterEnumStmt": _alter_enum,
    "AlterDomainStmt": _alter_domain,
    "CreateRoleStmt": _create_role,
    "AlterRoleStmt": _alter_role,
    "CreatedbStmt": _createdb,
    "CreatePLangStmt": _create_lang,
    "CommentStmt": _comment,
    "SelectStmt": _select,
}
