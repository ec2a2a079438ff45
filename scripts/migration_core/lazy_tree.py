"""pglast's statement trees, built lazily from the parser's JSON: a node's fields are converted when first read.

pglast's parse_sql builds every node of every statement in Python as it parses: about nine tenths of a parse, though
the tool reads a few fields of a few nodes. The same parse as JSON (libpg_query's, in C) plus json.loads costs a
tenth of that. A node here is an instance of a subclass of pglast's own node class (same name, same __slots__,
isinstance holds); each field, on its first read, gets exactly the value pglast gives it: the same node classes,
tuples for lists, enum members, character positions rather than byte offsets (tests/speed/test_lazy_tree.py compares
every field of every tree over the test suite's SQL). Pure: stdlib and pglast (import this module only to parse).
"""
from __future__ import annotations

import gc
import json
import re
import sys
from functools import lru_cache
from typing import Any

from pglast import ast, enums
from pglast.parser import Displacements, parse_sql_json

# An A_Const's value, by the key naming its kind, in the order pglast tries them.
VALUE_KINDS = {"boolval": ast.Boolean, "ival": ast.Integer, "fval": ast.Float, "bsval": ast.BitString,
               "sval": ast.String}
NO_LOCATION = None  # pglast's position of "unknown" (-1)


def parse_lazy(sql: str) -> tuple[Any, ...]:
    """Return the RawStmt nodes of sql, as pglast.parser.parse_sql does; a syntax error raises its ParseError.

    The parser's JSON is cut into one text per statement, decoded when a field of the statement is first read: a
    seed file's ten thousand INSERTs, whose fields no reader asks for, are never decoded (nor kept as dicts).
    """
    document = parse_sql_json(sql)
    positions = None if sql.isascii() else Displacements(sql)
    try:
        return cut_statements(document, positions)
    except ValueError:  # a JSON layout the cutting does not know: decode it whole
        return decoded_statements(document, positions)


def decoded_statements(document: str, positions: Any) -> tuple[Any, ...]:
    """Return the RawStmt nodes of the parser's JSON, decoded whole."""
    return tuple(raw_statement(item, positions) for item in loads_without_gc(document).get("stmts", ()))


def cut_statements(document: str, positions: Any) -> tuple[Any, ...]:
    """Return the RawStmt nodes of the parser's JSON, each statement's fields left as their JSON text; raise
    ValueError on any layout but the one described at STATEMENT_START."""
    head, *elements = document.split(STATEMENT_START)
    if not (LIST_START if elements else EMPTY_LIST).fullmatch(head):
        raise ValueError("unknown layout")
    if elements:
        if not elements[-1].endswith("]}"):
            raise ValueError("unknown layout")
        elements[-1] = elements[-1][:-2] + ","
    return tuple(statement_from_text(text, positions) for text in elements)


# Where each statement of the parser's JSON begins: {"version":N,"stmts":[{"stmt":{"TypeName":{fields}},
# "stmt_location":N,"stmt_len":N}, ...]} (a zero location or length is left out). Only a RawStmt has the fields
# stmt, stmt_location and stmt_len, and in JSON text a quote inside a string is escaped, so these keys cannot
# appear anywhere else.
STATEMENT_START = '{"stmt":'
LOCATION_KEY = ',"stmt_location":'
LENGTH_KEY = ',"stmt_len":'
LIST_START = re.compile(r'\{"version":\d+,"stmts":\[')
EMPTY_LIST = re.compile(r'\{"version":\d+,"stmts":\[\]\}')


def statement_from_text(element: str, positions: Any) -> Any:
    """Return the RawStmt of one element of the JSON's statement list (with the comma after it)."""
    if not element.endswith("},"):
        raise ValueError("unknown layout")
    body, start, length = element[:-2], 0, 0
    cut = len(body)
    at = body.rfind(LENGTH_KEY)
    if at >= 0:
        length, cut = int(body[at + len(LENGTH_KEY):]), at
    at = body.rfind(LOCATION_KEY, 0, cut)
    if at >= 0:
        start, cut = int(body[at + len(LOCATION_KEY):cut]), at
    node_text = body[:cut]  # {"TypeName":{fields}}
    name_end = node_text.index('"', 2)
    if not (node_text.startswith('{"') and node_text[name_end:name_end + 3] == '":{' and node_text.endswith("}}")):
        raise ValueError("unknown layout")
    node = new_node(getattr(ast, node_text[2:name_end]), node_text[name_end + 2:-1], positions)
    return raw_node(node, start, length, positions)


def raw_statement(item: dict[str, Any], positions: Any) -> Any:
    """Return one RawStmt from its decoded JSON (the way for a JSON layout the text cutting does not know)."""
    stmt = wrapped_node(item["stmt"], positions) if "stmt" in item else None
    return raw_node(stmt, item.get("stmt_location", 0), item.get("stmt_len", 0), positions)


def raw_node(stmt: Any, start: int, length: int, positions: Any) -> Any:
    """Return a RawStmt of the statement, its location and length turned from bytes into characters."""
    if positions is not None:
        start, length = positions(start), positions(start + length) - positions(start)
    node = new_node(ast.RawStmt, {}, positions)
    set_slot(node, "stmt", stmt)
    set_slot(node, "stmt_location", start)
    set_slot(node, "stmt_len", length)
    return node


def loads_without_gc(text: str) -> Any:
    """Return json.loads(text) with the cycle collector paused: the JSON holds no cycles, and its collections,
    triggered by every few hundred new dicts, scan all the objects the process has made so far (a 20,000-statement
    section decoded four times slower per statement than a 1,000-statement one)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return json.loads(text)
    except RecursionError:  # two JSON objects per tree level: give it the depth pglast's own build gets (and more)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit * 3)
        try:
            return json.loads(text)
        finally:
            sys.setrecursionlimit(limit)
    finally:
        if paused:
            gc.enable()


def new_node(cls: type, fields: dict[str, Any] | str, positions: Any) -> Any:
    """Return a node of pglast's class cls whose fields are read from the JSON object fields (or its text) when
    first asked."""
    lazy = LAZY_CLASSES.get(cls) or lazy_class(cls)
    node = lazy.__new__(lazy)
    set_slot(node, "_json", (fields, positions))
    return node


LAZY_CLASSES: dict[type, type] = {}
set_slot = object.__setattr__  # pglast's own __setattr__ checks every value: these are already its values


def lazy_class(cls: type) -> type:
    """Return the subclass of a pglast node class that converts a field on its first read (then it is a slot).

    Its one slot of its own holds the JSON; __slots__ is then pointed back at pglast's field table, which is what
    readers of the tree (and pglast itself) iterate.
    """
    lazy = type(cls.__name__, (cls,), {"__slots__": ("_json",), "__getattr__": read_field, "__eq__": same_node,
                                       "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    lazy.__slots__ = cls.__slots__
    LAZY_CLASSES[cls] = lazy
    return lazy


def same_node(node: Any, other: Any) -> bool:
    """Compare as pglast does (Node.__eq__), with a node of pglast's class too: a lazy node is one of its kind."""
    return isinstance(other, type(node).__mro__[1]) and all(
        getattr(node, name) == getattr(other, name) for name in node if name not in node._ATTRS_TO_IGNORE_IN_COMPARISON)


def read_field(node: Any, name: str) -> Any:
    """Convert one field from the node's JSON, keep it in its slot, and return it (only unset slots come here)."""
    info = type(node).__slots__.get(name)
    if info is None or name == "_json":
        raise AttributeError(name)
    fields, positions = node._json
    if fields.__class__ is str:  # a statement's fields, still as the parser's JSON text
        fields = loads_without_gc(fields)
        set_slot(node, "_json", (fields, positions))
    value = convert(info.c_type, fields.get(name.rstrip("_")), positions, fields)
    set_slot(node, name, value)
    return value


def convert(c_type: str, value: Any, positions: Any, fields: dict[str, Any]) -> Any:
    """Return pglast's value of a field of C type c_type from its JSON value (None: absent, the C zero value)."""
    kind = field_kind(c_type)
    if kind == "bool":
        return bool(value)
    if kind == "location":
        value = value or 0
        if value < 0:
            return NO_LOCATION
        return value if positions is None else positions(value)
    if kind == "int":
        return value or 0
    if kind == "float":
        return float(value or 0)
    if kind == "char":
        return value if value is not None else "\x00"
    if kind == "enum":
        enum = getattr(enums, c_type)
        return enum[value] if value is not None else enum(0)
    if kind == "value":  # A_Const.val: the constant's node, by the kind of constant
        return constant_value(fields, positions)
    if value is None:
        return None
    if kind == "list":
        return tuple(list_item(item, positions) for item in value)
    if kind == "node":
        return wrapped_node(value, positions)
    if kind == "bitmapset":
        return set(value)
    if kind == "string":
        return value
    return new_node(getattr(ast, kind), value, positions)  # a pointer to (or an embedded) node of a known type


@lru_cache(maxsize=None)
def field_kind(c_type: str) -> str:
    """Return how a field of this C type is converted (pglast's own per-type rules, ast.pyx)."""
    simple = {"bool": "bool", "ParseLoc": "location", "char": "char", "char*": "string", "List*": "list",
              "Node*": "node", "Expr*": "node", "Bitmapset*": "bitmapset", "ValUnion": "value", "Cost": "float",
              "Cardinality": "float", "double": "float"}
    if c_type in simple:
        return simple[c_type]
    if isinstance(getattr(enums, c_type, None), type):
        return "enum"
    name = c_type.rstrip("*")
    if isinstance(getattr(ast, name, None), type) and issubclass(getattr(ast, name), ast.Node):
        return name
    return "int"  # int, int16, int32, Index, AttrNumber, Oid, long, bits32, AclMode, SubTransactionId, ...


def wrapped_node(value: dict[str, Any], positions: Any) -> Any:
    """Return the node of a JSON object {"TypeName": {fields}} (a List: the tuple of its items)."""
    if not value:  # a NULL element of a list
        return None
    (type_name, fields), = value.items()
    if type_name == "List":
        return tuple(list_item(item, positions) for item in fields.get("items", ()))
    return new_node(getattr(ast, type_name), fields, positions)


def list_item(item: Any, positions: Any) -> Any:
    return wrapped_node(item, positions) if isinstance(item, dict) else item


def constant_value(fields: dict[str, Any], positions: Any) -> Any:
    """Return an A_Const's value node (Integer, String, ...), None for NULL, as pglast builds it."""
    if fields.get("isnull"):
        return None
    for key, kind in VALUE_KINDS.items():
        if key in fields:
            return new_node(kind, fields[key], positions)
    return None
