"""A snapshot of the Python heap in the V8 format that Chrome DevTools opens.

Every object the garbage collector tracks, and the objects they refer to
directly, is a node named after its type, with its ``sys.getsizeof`` size;
references are edges (dict keys and list indexes are kept as edge names). A
synthetic root holds the modules and every object nothing else refers to,
so the Memory tab can compute distances and retained sizes. The format:
https://github.com/v8/v8/blob/main/include/v8-profiler.h (``HeapGraphNode``).
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

NODE_FIELDS = ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"]
NODE_TYPES = [
    "hidden", "array", "string", "object", "code", "closure", "regexp", "number",
    "native", "synthetic", "concatenated string", "sliced string", "symbol", "bigint",
    "object shape",
]  # fmt: skip
EDGE_FIELDS = ["type", "name_or_index", "to_node"]
EDGE_TYPES = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]
NODE_TYPE = {name: index for index, name in enumerate(NODE_TYPES)}
EDGE_TYPE = {name: index for index, name in enumerate(EDGE_TYPES)}
MAX_NAME_CHARS = 200
# A string's name is redacted over this much of it before being cut to MAX_NAME_CHARS,
# so that a secret straddling the cut is masked whole, not half shown.
REDACT_WINDOW_CHARS = MAX_NAME_CHARS + 512
# A container's first items only: a list of millions of numbers would otherwise become
# millions of nodes (its own size still counts in full).
MAX_EDGES_PER_OBJECT = 10_000
_ROOT = object()
CALLABLES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def meta() -> dict[str, Any]:
    """The ``snapshot.meta`` that tells DevTools how to read the flat arrays."""
    return {
        "node_fields": NODE_FIELDS,
        "node_types": [NODE_TYPES, "string", "number", "number", "number", "number", "number"],
        "edge_fields": EDGE_FIELDS,
        "edge_types": [EDGE_TYPES, "string_or_number", "node"],
        "trace_function_info_fields": [
            "function_id", "name", "script_name", "script_id", "line", "column",
        ],
        "trace_node_fields": ["id", "function_info_index", "count", "size", "children"],
        "sample_fields": ["timestamp_us", "last_assigned_id"],
        "location_fields": ["object_index", "script_id", "line", "column"],
    }  # fmt: skip


def node_type(obj: object) -> str:
    """The V8 node type closest to a Python object's kind.

    Asks ``type(obj)``, never the object: ``isinstance`` on a weak proxy whose
    referent is gone raises ReferenceError.
    """
    kind = type(obj)
    if issubclass(kind, str | bytes):
        return "string"
    if issubclass(kind, bool | int | float | complex):
        return "number"
    if issubclass(kind, types.CodeType):
        return "code"
    if issubclass(kind, CALLABLES):
        return "closure"
    return "object"


def _same(text: str) -> str:
    return text


def node_name(obj: object, redact: Callable[[str], str] = _same) -> str:
    """The name DevTools groups by: the string itself (redacted), a function's name, or the type."""
    kind = type(obj)
    if issubclass(kind, str):
        return redact(str(obj)[:REDACT_WINDOW_CHARS])[:MAX_NAME_CHARS]
    if issubclass(kind, (*CALLABLES, types.CodeType)):
        return str(getattr(obj, "__qualname__", None) or getattr(obj, "co_qualname", "function"))
    if issubclass(kind, type):
        return f"class {obj.__qualname__}"[:MAX_NAME_CHARS]  # type: ignore[attr-defined]
    return kind.__qualname__[:MAX_NAME_CHARS]


def self_size(obj: object) -> int:
    """``sys.getsizeof``, or 0 for the odd object that refuses it."""
    try:
        return sys.getsizeof(obj)
    except Exception:
        return 0


@dataclass
class Edge:
    """A reference: its V8 type, its name (or element index), and its target's node."""

    kind: str
    name: str | int
    to: int


@dataclass
class HeapGraph:
    """Nodes (kept alive while the snapshot is built) and each node's edges."""

    objects: list[object] = field(default_factory=list)
    index: dict[int, int] = field(default_factory=dict)
    edges: list[list[Edge]] = field(default_factory=list)
    referenced: set[int] = field(default_factory=set)
    redact: Callable[[str], str] = _same

    def node(self, obj: object) -> int:
        """The node of an object, added on first sight."""
        found = self.index.get(id(obj))
        if found is None:
            found = self.index[id(obj)] = len(self.objects)
            self.objects.append(obj)
            self.edges.append([])
        return found

    def link(self, source: int, kind: str, name: str | int, target: object) -> None:
        """Add a reference from a node to an object."""
        to = self.node(target)
        self.referenced.add(to)
        self.edges[source].append(Edge(kind, name, to))


def _dict_edges(graph: HeapGraph, source: int, obj: dict) -> None:
    for key, value in islice(list(obj.items()), MAX_EDGES_PER_OBJECT):
        name = graph.redact(key if isinstance(key, str) else repr(key))[:MAX_NAME_CHARS]
        graph.link(source, "property", name, value)
        if not isinstance(key, str):
            graph.link(source, "internal", "key", key)


def _sequence_edges(graph: HeapGraph, source: int, obj: list | tuple) -> None:
    for position, value in enumerate(list(obj)[:MAX_EDGES_PER_OBJECT]):
        graph.link(source, "element", position, value)


def _referent_name(obj: object, referent: object, position: int) -> str:
    if referent is type(obj):
        return "__class__"
    if referent is getattr(obj, "__dict__", None):
        return "__dict__"
    return str(position)


def _other_edges(graph: HeapGraph, source: int, obj: object) -> None:
    referents = gc.get_referents(obj)[:MAX_EDGES_PER_OBJECT]
    for position, referent in enumerate(referents):
        graph.link(source, "internal", _referent_name(obj, referent, position), referent)


def add_references(graph: HeapGraph, source: int, obj: object) -> None:
    """Add the edges of one tracked object."""
    if type(obj) is dict:
        _dict_edges(graph, source, obj)
    elif type(obj) in (list, tuple):
        _sequence_edges(graph, source, obj)  # type: ignore[arg-type]
    else:
        _other_edges(graph, source, obj)


def _root_edges(graph: HeapGraph, root: int, tracked: list[int]) -> list[Edge]:
    """The root refers to every module, and to every object nothing else refers to."""
    edges = [Edge("shortcut", name, graph.index[id(m)]) for name, m in _modules(graph)]
    edges += [
        Edge("element", i, node) for i, node in enumerate(tracked) if node not in graph.referenced
    ]
    return edges


def _modules(graph: HeapGraph) -> list[tuple[str, object]]:
    return [(n, m) for n, m in list(sys.modules.items()) if id(m) in graph.index]


def build_graph(objects: list[object], redact: Callable[[str], str] = _same) -> HeapGraph:
    """The graph of the given tracked objects and what they refer to; node 0 is the root."""
    graph = HeapGraph(redact=redact)
    # The root's placeholder must not be the graph itself: that cycle would keep millions of
    # edges alive until the next collection, and in the next snapshot.
    root = graph.node(_ROOT)
    tracked = [graph.node(obj) for obj in objects]
    for node in tracked:
        add_references(graph, node, graph.objects[node])
    graph.edges[root] = _root_edges(graph, root, tracked)
    return graph


class StringTable:
    """The snapshot's ``strings``: each distinct string once, referred to by index."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        """The index of a string, added on first use."""
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.strings)
            self.strings.append(utf8(text))
        return found


def utf8(text: str) -> str:
    """The text, with lone surrogates (which JSON cannot carry) escaped."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _node_row(graph: HeapGraph, node: int, strings: StringTable) -> list[int]:
    if node == 0:
        return [NODE_TYPE["synthetic"], strings("(Python heap)"), 1, 0, len(graph.edges[0]), 0, 0]
    obj = graph.objects[node]
    kind = NODE_TYPE[node_type(obj)]
    size = self_size(obj)
    return [
        kind,
        strings(node_name(obj, graph.redact)),
        node * 2 + 1,
        size,
        len(graph.edges[node]),
        0,
        0,
    ]


def _edge_row(edge: Edge, strings: StringTable) -> list[int]:
    name = edge.name if edge.kind == "element" else strings(str(edge.name))
    return [EDGE_TYPE[edge.kind], int(name), edge.to * len(NODE_FIELDS)]


def flatten(graph: HeapGraph) -> dict[str, Any]:
    """The snapshot document: meta, counts, flat ``nodes`` and ``edges``, ``strings``."""
    strings = StringTable()
    nodes: list[int] = []
    edges: list[int] = []
    for node in range(len(graph.objects)):
        nodes += _node_row(graph, node, strings)
        for edge in graph.edges[node]:
            edges += _edge_row(edge, strings)
    edge_count = len(edges) // len(EDGE_FIELDS)
    return document(nodes, edges, strings.strings, edge_count)


def document(nodes: list[int], edges: list[int], strings: list[str], edge_count: int) -> dict:
    """Wrap the flat arrays in the snapshot's top-level object."""
    snapshot = {
        "meta": meta(),
        "node_count": len(nodes) // len(NODE_FIELDS),
        "edge_count": edge_count,
        "trace_function_count": 0,
    }
    empty: list[int] = []
    return {
        "snapshot": snapshot,
        "nodes": nodes,
        "edges": edges,
        "trace_function_infos": empty,
        "trace_tree": empty,
        "samples": empty,
        "locations": empty,
        "strings": strings,
    }


def take_snapshot(redact: Callable[[str], str] = _same) -> dict[str, Any]:
    """Snapshot the heap of this process now (slow: run it off the event loop).

    ``redact`` rewrites the text of every string node and dict key before it is written.
    """
    objects = gc.get_objects()
    try:
        return flatten(build_graph(objects, redact))
    finally:
        del objects
