"""Reading YAML as docker compose does, safely: a size limit per file, alias bombs refused before anything is
expanded, and the ``!reset`` / ``!override`` tags of override files.

Limits (one clear ``InvalidSpec`` each, naming the file): a file past ``MAX_FILE_BYTES``; a document whose
nodes, counted as if every alias and merge key were expanded, pass ``MAX_NODES`` (checked on PyYAML's node
graph, where an alias is one shared node, before any Python object is built); nesting deeper than
``MAX_DEPTH``; an alias inside its own anchor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mypaas.errors import InvalidSpec

MAX_FILE_BYTES = 1024 * 1024  # one compose or env file
MAX_NODES = 100_000  # YAML nodes of one document, aliases and merge keys expanded
MAX_DEPTH = 64  # nested mappings and lists

Path = tuple[str | int, ...]

# docker compose reads YAML 1.2, PyYAML speaks YAML 1.1. Without these resolvers `restart: no` would be
# False, `22:22` the integer 1342 (base 60), `010` the integer 8 and `2024-01-01` a date.
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_REPLACED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Reset:
    """The value of a ``!reset`` node: the key is removed from what earlier files set."""

    def __repr__(self) -> str:
        return "!reset"


RESET = _Reset()


@dataclass(frozen=True)
class _Override:
    """A ``!override`` value: it replaces what earlier files set instead of being merged with it."""

    value: Any


@dataclass
class Document:
    """One YAML document of a compose file: its tree (no shared nodes: aliases are copied), and the paths
    tagged ``!reset`` (removed from the tree) and ``!override`` (kept in the tree)."""

    tree: Any
    resets: list[Path] = field(default_factory=list)
    overrides: list[Path] = field(default_factory=list)


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars that also refuses duplicate keys, as docker compose does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class ZeroPadded(int):
    """An integer written with a leading zero (``0440``): the decimal number for every key, but a file
    ``mode`` reads its digits as octal, as docker compose (go-yaml v3) does."""

    digits: str

    def __new__(cls, digits: str) -> ZeroPadded:
        number = super().__new__(cls, int(digits, 10))
        number.digits = digits
        return number

    def __reduce__(self) -> tuple[type[ZeroPadded], tuple[str]]:  # copies (a merge's) keep the digits
        return (ZeroPadded, (self.digits,))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    if len(text) > 1 and text.startswith("0"):
        return ZeroPadded(text)
    return int(text, 10)


def _construct_reset(loader: yaml.SafeLoader, node: yaml.Node) -> _Reset:
    return RESET


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> _Override:
    if isinstance(node, yaml.MappingNode):
        return _Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return _Override(loader.construct_sequence(node, deep=True))
    return _Override(loader.construct_scalar(node))  # type: ignore[arg-type]


_ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_ComposeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ComposeLoader.add_constructor("!reset", _construct_reset)
_ComposeLoader.add_constructor("!override", _construct_override)


def check_size(text: str, name: str) -> None:
    """Refuse a file past ``MAX_FILE_BYTES`` (before anything reads it)."""
    size = len(text) if len(text) > MAX_FILE_BYTES else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise InvalidSpec(
            f"{name} is {size:,} bytes: files of a compose project are limited to "
            f"{MAX_FILE_BYTES // 1024 // 1024} MiB each",
            field=name,
        )


def load_documents(text: str, name: str, *, label: str = "") -> list[Document]:
    """Every YAML document of ``text`` (a file named ``name``; errors say ``label`` when given)."""
    check_size(text, name)
    where = f" in {label}" if label else ""
    loader: _ComposeLoader | None = None
    try:
        loader = _ComposeLoader(text)
        documents = []
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node() said there is one
            _check_nodes(node, name, where)
            documents.append(_untag(loader.construct_document(node)))
        return documents
    except yaml.YAMLError as exc:
        problem, line = str(exc).splitlines()[0], ""
        if isinstance(exc, yaml.MarkedYAMLError):
            problem = exc.problem or problem
            line = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        raise InvalidSpec(f"invalid YAML{where}: {problem}{line}", field=name) from exc
    except RecursionError as exc:
        raise InvalidSpec(f"invalid YAML{where}: nested too deeply", field=name) from exc
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(text: str, name: str = "compose") -> Any:
    """The one document of ``text`` (None when empty), tags resolved away; as :func:`load_documents`."""
    documents = load_documents(text, name)
    if len(documents) > 1:
        raise InvalidSpec("invalid YAML: expected a single document", field=name)
    return documents[0].tree if documents else None


# --- the node graph, before it becomes Python objects -------------------------------------------------
def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_nodes(root: yaml.Node, name: str, where: str) -> None:
    """Count the nodes of ``root`` as if aliases were expanded (each shared node is visited once and its
    count reused), and its depth; refuse an alias that contains itself."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, depth)
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            open_nodes.discard(key)
            counts = [sizes[id(child)] for child in _children(node)]
            total = 1 + sum(count for count, _ in counts)
            depth = 1 + max((depth for _, depth in counts), default=0)
            _check_limits(node, total, depth, name, where)
            sizes[key] = (total, depth)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            line = node.start_mark.line + 1
            raise InvalidSpec(
                f"invalid YAML{where}: an alias refers to its own anchor (line {line})", field=name
            )
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = (1, 1)
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(_children(node)) if id(child) not in sizes)


def _check_limits(node: yaml.Node, total: int, depth: int, name: str, where: str) -> None:
    if total > MAX_NODES:
        line = node.start_mark.line + 1
        raise InvalidSpec(
            f"invalid YAML{where}: the document expands to more than {MAX_NODES:,} nodes once its aliases "
            f"are expanded (line {line}); refused before expanding it",
            field=name,
        )
    if depth > MAX_DEPTH:
        raise InvalidSpec(f"invalid YAML{where}: nested too deeply", field=name)


# --- the tree: copies every shared node and collects the !reset / !override tags ----------------------
def _untag(tree: Any) -> Document:
    document = Document(tree=None)
    document.tree = _copy(tree, (), document)
    return document


def _copy(node: Any, path: Path, document: Document) -> Any:
    if isinstance(node, _Override):
        document.overrides.append(path)
        return _copy(node.value, path, document)
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            if value is RESET:
                document.resets.append((*path, key))
                continue
            out[key] = _copy(value, (*path, key), document)
        return out
    if isinstance(node, list):
        items: list[Any] = []
        for value in node:
            if value is RESET:  # a list item tagged !reset is left out
                continue
            items.append(_copy(value, (*path, len(items)), document))
        return items
    return node
