"""Build pglast AST nodes from libpg_query's JSON, several times faster than ``parse_sql``.

``pglast.parser.parse_sql`` builds each node through validating ``__setattr__`` hooks (type
checks, enum coercion, an import per attribute); on a migration corpus that is half of all lint
time. The parser's JSON output holds the same tree: we decode it with the C json module and
create the same pglast classes directly, filling every slot. The few places where the JSON
differs from pglast's attribute model are handled here: untagged children whose type the slot
names, ``def`` spelled ``def_``, A_Const's value union, omitted defaults (false, 0, empty).
Any surprise falls back to ``parse_sql``; ``tests/model/test_fastparse.py`` proves both give the
same normalized actions on the whole corpus.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Callable
from typing import Any

from pglast import ast, enums
from pglast import parser as _pg

_VALUE_NODES = {"ival": ast.Integer, "fval": ast.Float, "sval": ast.String,
                "bsval": ast.BitString, "boolval": ast.Boolean}
_SCALAR_DEFAULTS = {"bool": False, "char": "\x00"}


class Unsupported(Exception):
    pass


_PLANS: dict[type, tuple[tuple[str, str, str, Any], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, str, str, Any], ...]:
    """(slot, json key, kind, extra) for each slot of a node class, computed once."""
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    items = []
    for slot, info in cls.__slots__.items():  # type: ignore[attr-defined]
        ctype = info.c_type
        key = slot[:-1] if slot.endswith("_") else slot
        if ctype.endswith("*") and ctype != "char*":
            target = getattr(ast, ctype[:-1], None)
            items.append((slot, key, "node", target))
        elif ctype == "char*":
            items.append((slot, key, "plain", None))
        elif ctype in _SCALAR_DEFAULTS:
            items.append((slot, key, "scalar", _SCALAR_DEFAULTS[ctype]))
        elif hasattr(enums, ctype):
            items.append((slot, key, "enum", getattr(enums, ctype)))
        elif ctype == "ValUnion":
            items.append((slot, key, "valunion", None))
        elif isinstance(getattr(ast, ctype, None), type):
            # A struct embedded by value, untagged in the JSON: CreateForeignTableStmt.base.
            items.append((slot, key, "node", getattr(ast, ctype)))
        else:
            # Numeric C types (int, Oid, ParseLoc, SubTransactionId, ...): JSON omits zeros.
            py = info.py_type if isinstance(info.py_type, tuple) else (info.py_type,)
            default = 0.0 if float in py and int not in py else 0 if int in py else None
            items.append((slot, key, "scalar" if default is not None else "plain", default))
    plan = _PLANS[cls] = tuple(items)
    return plan


def _node(cls: type[ast.Node], data: dict[str, Any]) -> Any:
    build = _BUILDERS.get(cls.__name__)
    if build is None:
        build = _BUILDERS[cls.__name__] = _make_builder(cls)
    return build(data)


# One builder function per node class, keyed by class name (the JSON tag).
_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {}


# Nodes of one class built by walking its plan before its straight-line builder is compiled.
# Compiling costs ~0.35 ms a class, as much as walking the plan for some 30 nodes; a corpus
# meets 58 classes and a third of them fewer than 20 times, a one-file lint most of them.
COMPILE_AFTER = 24


def _make_builder(cls: type[ast.Node]) -> Callable[[dict[str, Any]], Any]:
    """A builder that walks the class's plan for its first COMPILE_AFTER nodes, then puts
    the compiled one (``_compile_builder``) in its place in ``_BUILDERS``."""
    name = cls.__name__
    shadow = _shadow(cls)
    plan = _plan(cls)
    new = object.__new__
    set_ = object.__setattr__
    built = 0

    def build(d: dict[str, Any]) -> Any:
        nonlocal built
        built += 1
        if built == COMPILE_AFTER:
            _BUILDERS[name] = _compile_builder(cls, shadow)
        g = d.get
        o: Any = new(shadow)
        # Slot by slot, what each line of the compiled builder does.
        for slot, key, kind, extra in plan:
            if kind == "valunion":
                set_(o, slot, _valunion(d))
                continue
            v = g(key)
            if kind == "node":
                v = v if v is None else _child(v, extra)
            elif kind == "scalar":
                v = extra if v is None else v
            elif kind == "enum":
                v = v if v is None else extra[v]
            set_(o, slot, v)
        o.ancestors = None
        o.__class__ = cls
        return o

    return build


def _shadow(cls: type[ast.Node]) -> type:
    # See _compile_builder: a subclass without pglast's __setattr__ and without slots of its own.
    return type(cls.__name__, (cls,), {"__slots__": (), "__setattr__": object.__setattr__,
                                       "__module__": __name__})


def _compile_builder(cls: type[ast.Node], shadow: type) -> Callable[[dict[str, Any]], Any]:
    """Generate straight-line code that fills every slot of one node class from its JSON.

    A loop over ``_plan`` that dispatches on each slot's kind and calls ``object.__setattr__``
    costs most of the parse time. The generated function does the same per class with no
    dispatch, and assigns plain attributes on a throwaway subclass whose ``__setattr__`` is
    object's (so no pglast validation hook, and CPython specialises the slot stores); the
    object then becomes a ``cls`` instance: the subclass adds no slots, so the layout is
    identical and ``__class__`` assignment is allowed.
    """
    name = cls.__name__
    env: dict[str, Any] = {"new": object.__new__, "S": shadow, "C": cls, "child": _child,
                           "valunion": _valunion, "set_": object.__setattr__}
    lines = ["def build(d):", "    g = d.get", "    o = new(S)"]
    for i, (slot, key, kind, extra) in enumerate(_plan(cls)):
        env[f"x{i}"] = extra
        if kind == "node":
            value = f"v if v is None else child(v, x{i})"
        elif kind == "scalar":
            value = f"x{i} if v is None else v"
        elif kind == "enum":
            value = f"v if v is None else x{i}[v]"
        elif kind == "valunion":
            value = "valunion(d)"
        else:
            value = "v"
        if value != "valunion(d)":
            lines.append(f"    v = g({key!r})")
        if slot.isidentifier() and not keyword.iskeyword(slot):
            lines.append(f"    o.{slot} = {value}")
        else:
            lines.append(f"    set_(o, {slot!r}, {value})")
    lines += ["    o.ancestors = None", "    o.__class__ = C", "    return o"]
    exec(compile("\n".join(lines), f"<fastparse {name}>", "exec"), env)
    build: Callable[[dict[str, Any]], Any] = env["build"]
    return build


def _valunion(data: dict[str, Any]) -> Any:
    for key, cls in _VALUE_NODES.items():
        if key in data:
            inner = data[key]
            if cls is ast.Boolean:
                return _node(cls, {"boolval": inner.get("boolval", False)})
            return _node(cls, inner)
    return None


def _child(value: Any, target: type | None) -> Any:
    if isinstance(value, list):
        return tuple([_child(v, None) for v in value])
    if isinstance(value, dict):
        if len(value) == 1:
            (name, inner), = value.items()
            build = _BUILDERS.get(name)
            if build is not None and isinstance(inner, dict):
                return build(inner)
            if name == "List" and isinstance(inner, dict):  # a list inside a list: pglast's tuple
                return tuple([_child(v, None) for v in inner.get("items", ())])
            cls = getattr(ast, name, None)
            if cls is not None and isinstance(inner, dict) and name[0].isupper():
                return _node(cls, inner)
        if target is not None and target is not ast.Node:
            return _node(target, value)
        if not value and target is None:  # a NULL list member, e.g. SELECT DISTINCT's (None,)
            return None
        raise Unsupported(f"untagged child without a type: {list(value)[:3]}")
    return value


def parse_sql(sql: str) -> tuple[Any, ...]:
    """Like ``pglast.parser.parse_sql``: RawStmt nodes. Raises ParseError like it."""
    text = _pg.parse_sql_json(sql)
    try:
        tree = json.loads(text)
        return tuple(_node(ast.RawStmt, raw) for raw in tree.get("stmts", ()))
    except (Unsupported, KeyError, TypeError, ValueError, AttributeError):
        return _pg.parse_sql(sql)


def parse_script(sql: str, nodes: bool = True) -> tuple[tuple[int, int, str, Any], ...]:
    """(stmt_location, stmt_len, node class name, statement node) for each statement of a whole
    script, offsets in *characters* as ``pglast.parser.parse_sql`` reports them. Raises
    ParseError like it. ``nodes=False`` skips building the trees (the node is then None), for
    callers that only need where statements are and what they are.

    libpg_query's JSON counts UTF-8 bytes while the fallback counts characters; callers slice
    the script's text by these offsets, so both paths must mean the same thing.
    """
    text = _pg.parse_sql_json(sql)
    try:
        located = []
        for raw in json.loads(text).get("stmts", ()):
            (kind, inner), = raw["stmt"].items()
            node = _node(getattr(ast, kind), inner) if nodes else None
            located.append((raw.get("stmt_location", 0), raw.get("stmt_len", 0), kind, node))
        return tuple(located) if sql.isascii() else _char_offsets(sql, located)
    except (Unsupported, KeyError, TypeError, ValueError, AttributeError):
        return tuple((r.stmt_location or 0, r.stmt_len or 0, type(r.stmt).__name__,
                      r.stmt if nodes else None) for r in _pg.parse_sql(sql))


def _char_offsets(sql: str, located: list[tuple[int, int, str, Any]]
                  ) -> tuple[tuple[int, int, str, Any], ...]:
    """Byte offsets to character offsets, decoding each stretch once (statements come in
    order). A stretch not on a character boundary raises UnicodeDecodeError, a ValueError."""
    data = sql.encode("utf-8")
    out = []
    byte = char = 0
    for location, length, kind, node in located:
        char += len(data[byte:location].decode("utf-8"))
        byte, start = location, char
        char += len(data[byte:byte + length].decode("utf-8"))
        byte += length
        out.append((start, char - start, kind, node))
    return tuple(out)
