"""Read a config's YAML text as the user wrote it: YAML 1.2 core-schema rules, strict keys, bounded size.

PyYAML implements YAML 1.1, whose implicit typing changes values silently: ``010`` is the octal 8,
``10:00`` the sexagesimal 600, ``yes``/``on`` are true, ``2026-01-01`` a date, while ``1e-3`` stays a
string. Configs are read with the YAML 1.2 core schema instead (what YAML 1.2 readers and JSON
agree on): whole numbers are decimal (``0o17`` and ``0x1F`` for octal and hexadecimal), floats
include ``1e-3``, only ``true``/``false`` (any case of those) are booleans, ``null``/``~``/nothing is
null, and everything else is text. PyYAML is kept (its C parser, libyaml, reads a config 10x
faster than a pure-Python one) with this schema's resolvers and constructors in place of 1.1's.

On top of the schema:

* keys are text and unique within a mapping (a duplicate is refused with both lines); merge keys
  (``<<: *defaults``) and anchors work, explicit keys override merged ones;
* tags a config has no use for (``!!binary``, ``!!timestamp``, ``!!set``, ``!python/...``) and
  numbers JSON cannot hold (``.inf``, ``.nan``) are refused with line and column;
* a plain value that YAML 1.1 readers (QUARK 2, PyYAML) read differently is reported as a warning,
  so a config shared with them is not silently two configs;
* the text each non-text value was read from is kept (``texts``), so errors quote ``010`` or
  ``1e3`` as written, never a number the user did not type.

Runs made before these rules (``run.json`` without ``yaml_rules``) are re-read with YAML 1.1's
(``rules="1.1"``), so their config hash still matches.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver, Resolver

try:  # libyaml's parser, when PyYAML was built with it
    from yaml._yaml import CParser

    class _Reading(CParser):
        """Text to nodes by libyaml."""

except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Reading(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        """Text to nodes in Python."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


MAX_CONFIG_BYTES = 1_000_000
MAX_VALUES = 1_000_000  # scalars, lists and mappings once YAML aliases are expanded
#: The rules new runs are read with (saved in run.json as ``yaml_rules``); "1.1" is PyYAML's default.
YAML_RULES = ("1.2", "1.1")

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MERGE = (TAG + name for name in ("str", "int", "float", "bool", "null", "merge"))
SEQ, MAP = TAG + "seq", TAG + "map"

INT_12 = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
FLOAT_12 = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
NULL_12 = re.compile(r"^(?:~|null|Null|NULL|)$")
MERGE_KEY = re.compile(r"^(?:<<)$")


class Core12Resolver(BaseResolver):
    """Implicit tags of plain scalars by the YAML 1.2 core schema (and ``<<`` as a merge key)."""


for _tag, _pattern, _first in (
    (BOOL, BOOL_12, "tTfF"),
    (INT, INT_12, "-+0123456789"),
    (FLOAT, FLOAT_12, "-+0123456789."),
    (NULL, NULL_12, ["~", "n", "N", ""]),
    (MERGE, MERGE_KEY, "<"),
):
    Core12Resolver.add_implicit_resolver(_tag, _pattern, list(_first))

_RESOLVER_11 = Resolver()


class ConfigYamlError(Exception):
    """A config that is valid YAML but not a valid config, at ``mark`` (a PyYAML mark, or None)."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.mark = mark


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _reading(value: Any) -> str:
    """How a value is described in a warning: ``the number 8``, ``the text '10:00'``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, datetime.date | datetime.datetime):
        return f"the date {value.isoformat()}"
    return f"the text {str(value)!r}"


class _ConfigConstructor(SafeConstructor):
    """Keys that are text and unique, the source texts of non-text values, and merge keys."""

    def _init_config(self) -> None:
        self.texts: dict[int, dict[Any, str]] = {}
        self.warnings: list[str] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self._check_keys(node, set())
        return super().construct_mapping(node, deep=deep)

    def _check_keys(self, node: MappingNode, seen_nodes: set[int]) -> None:
        """Refuse non-text and duplicate keys of ``node`` and of the mappings merged into it."""
        if id(node) in seen_nodes:
            return
        seen_nodes.add(id(node))
        first: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for part in merged:
                    if isinstance(part, MappingNode):
                        self._check_keys(part, seen_nodes)
                continue
            if not isinstance(key_node, ScalarNode):
                raise ConfigYamlError(f"a key must be a name, not a {key_node.id}", key_node.start_mark)
            if key_node.tag != STR:
                value = self.construct_object(key_node)
                raise ConfigYamlError(
                    f"key `{key_node.value}` is read as {_reading(value)}; keys are names (quote it: "
                    f"'{key_node.value}')",
                    key_node.start_mark,
                )
            if key_node.value in first:
                raise ConfigYamlError(
                    f"duplicate key {key_node.value!r} (first at line {first[key_node.value].line + 1}); "
                    "give each key once",
                    key_node.start_mark,
                )
            first[key_node.value] = key_node.start_mark

    def construct_config_map(self, node: MappingNode) -> Any:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        self._keep_texts(data, ((key_node.value, value_node) for key_node, value_node in node.value))

    def construct_config_seq(self, node: SequenceNode) -> Any:
        data: list[Any] = []
        yield data
        data.extend(self.construct_sequence(node))
        self._keep_texts(data, enumerate(node.value))

    def _keep_texts(self, data: Any, children: Any) -> None:
        texts = {}
        for key, child in children:
            if isinstance(child, ScalarNode) and not isinstance(self.constructed_objects.get(child), str):
                texts[key] = child.value
        if texts:
            self.texts[id(data)] = texts


_ConfigConstructor.add_constructor(MAP, _ConfigConstructor.construct_config_map)
_ConfigConstructor.add_constructor(SEQ, _ConfigConstructor.construct_config_seq)


class _Core12Constructor(_ConfigConstructor):
    """YAML 1.2 core-schema scalars; tags a config has no use for are refused."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        value = super().construct_object(node, deep=deep)
        if isinstance(node, ScalarNode) and not node.style and id(node) not in self._compared:
            self._compared.add(id(node))
            self._compare_with_yaml11(node, value)
        return value

    def _compare_with_yaml11(self, node: ScalarNode, value: Any) -> None:
        """Warn when YAML 1.1 readers read this plain scalar as another value (or another type)."""
        if node.tag != self.resolve(ScalarNode, node.value, (True, False)):
            return  # an explicit tag: both read what it says
        tag11 = _RESOLVER_11.resolve(ScalarNode, node.value, (True, False))
        if tag11 == node.tag and tag11 not in (INT, FLOAT):
            return
        try:
            value11 = SafeConstructor.yaml_constructors[tag11](self, ScalarNode(tag11, node.value))
        except (ValueError, ConstructorError):
            return
        if tag11 == node.tag and (value11 == value or value11 != value11):
            return
        self.warnings.append(
            f"{_where(node.start_mark)}: `{node.value}` is read as {_reading(value)} (YAML 1.2); YAML 1.1 "
            f"readers such as QUARK 2 read {_reading(value11)}"
        )

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node)
        if not INT_12.match(text):
            raise ConfigYamlError(f"`{text}` is not a whole number (YAML 1.2: 10, -3, 0o17, 0x1F)", node.start_mark)
        try:
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text, 10)
        except ValueError:  # more digits than Python converts
            raise ConfigYamlError(f"`{text[:20]}...` has too many digits", node.start_mark) from None

    def construct_yaml_float(self, node: ScalarNode) -> float:
        text = self.construct_scalar(node)
        if not FLOAT_12.match(text) and not re.match(r"^[-+]?[0-9]+$", text):
            raise ConfigYamlError(f"`{text}` is not a number (YAML 1.2: 0.5, 1e-3, -2.5E+4)", node.start_mark)
        lowered = text.lower()
        value = math.inf if lowered.endswith(".inf") else math.nan if lowered == ".nan" else float(text)
        if not math.isfinite(value):
            raise ConfigYamlError(
                f"`{text}` is not a finite number; results are strict JSON, which holds finite numbers only",
                node.start_mark,
            )
        return -value if text.startswith("-") and lowered.endswith(".inf") else value

    def construct_unused(self, node: Node) -> Any:
        tag = node.tag.replace(TAG, "!!")
        raise ConfigYamlError(
            f"the tag {tag} has no use in a config; write plain values (text, numbers, true/false, lists)",
            node.start_mark,
        )


_Core12Constructor.add_constructor(INT, _Core12Constructor.construct_yaml_int)
_Core12Constructor.add_constructor(FLOAT, _Core12Constructor.construct_yaml_float)
for _unused in ("binary", "timestamp", "omap", "pairs", "set"):
    _Core12Constructor.add_constructor(TAG + _unused, _Core12Constructor.construct_unused)
_Core12Constructor.add_constructor(None, _Core12Constructor.construct_unused)


class ConfigLoader(_Reading, _Core12Constructor, Core12Resolver):
    """Reads a config by the YAML 1.2 core schema (see the module doc)."""

    def __init__(self, stream: str) -> None:
        _Reading.__init__(self, stream)
        _Core12Constructor.__init__(self)
        Core12Resolver.__init__(self)
        self._init_config()
        self._compared: set[int] = set()


class Yaml11ConfigLoader(_Reading, _ConfigConstructor, Resolver):
    """Reads a config as quark-cli did before the YAML 1.2 rules (PyYAML's YAML 1.1), for old runs."""

    def __init__(self, stream: str) -> None:
        _Reading.__init__(self, stream)
        _ConfigConstructor.__init__(self)
        Resolver.__init__(self)
        self._init_config()


class ConfigDumper(yaml.SafeDumper):
    """Writes values so that both YAML 1.2 and YAML 1.1 readers read them back unchanged.

    Text is quoted when either schema would read it as something else (``'010'``, ``'yes'``,
    ``'1e3'``); numbers, booleans and null are written plain.
    """

    yaml_implicit_resolvers = Core12Resolver.yaml_implicit_resolvers

    def represent_str(self, data: str) -> Any:
        # PyYAML writes NEL, LS, PS and CR raw inside single quotes, where readers fold them into
        # spaces: text with any character that is not printable goes in double quotes, escaped.
        if any(not character.isprintable() for character in data):
            return self.represent_scalar(STR, data, style='"')
        return super().represent_str(data)

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        tag12 = Core12Resolver.resolve(self, kind, value, implicit)
        if kind is ScalarNode and implicit[0] and tag12 != _RESOLVER_11.resolve(kind, value, implicit):
            return TAG + "conflict"  # no value has this tag: the emitter quotes the text
        return tag12


ConfigDumper.add_representer(str, ConfigDumper.represent_str)


def dump_config(data: Any) -> str:
    """YAML text of ``data`` (plain JSON-like values) that reads back equal under YAML 1.2 and 1.1."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, allow_unicode=True)


@dataclass
class ParsedYaml:
    """A config's YAML text as data, with what the loader noticed on the way.

    ``texts`` maps ``id(list or dict)`` to ``{index or key: source text}`` for the values that are not
    text (valid while ``raw`` lives); ``warnings`` are ``"line L, column C: ..."`` lines.
    """

    raw: dict[str, Any]
    texts: dict[int, dict[Any, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Top-level keys that only define anchors (see ``read_yaml``), left out of ``raw``.
    definitions: list[str] = field(default_factory=list)

    def shown(self, container: Any, key: Any) -> str:
        """``container[key]`` as the user wrote it (```010```, ```1e3```) when that differs from its repr."""
        text, value = self.texts.get(id(container), {}).get(key), repr(container[key])
        return f"`{text}`" if text is not None and text != value else value


class YamlConfigError(Exception):
    """A config text that cannot be read; ``where`` is ``line L, column C`` (or empty)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def read_yaml(text: str, rules: str = "1.2", known: Collection[str] = ()) -> ParsedYaml:
    """Parse a config's YAML ``text`` by ``rules`` ("1.2", or "1.1" for runs made before them).

    A top-level key outside ``known`` whose value holds anchors used under the ``known`` keys
    (``defaults: &defaults {...}`` for ``<<: *defaults``) only defines them: it is left out of
    ``raw`` (and so of the config hash), and named in ``definitions``.

    Raises YamlConfigError (with line and column where known) for text over MAX_CONFIG_BYTES,
    invalid YAML, non-text or duplicate keys, unused tags, non-finite numbers, aliases expanding
    past MAX_VALUES values, nesting Python cannot follow, and a document that is not a mapping.
    """
    if len(text.encode(errors="replace")) > MAX_CONFIG_BYTES:
        raise YamlConfigError("", f"file is larger than {MAX_CONFIG_BYTES} bytes; a benchmark config is small")
    loader = (ConfigLoader if rules == "1.2" else Yaml11ConfigLoader)(text)
    try:
        node = loader.get_single_node()
        definitions = _definitions(node, known) if known else []
        raw = loader.construct_document(node) if node is not None else None
    except ConfigYamlError as error:
        raise YamlConfigError(_where(error.mark), str(error)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise YamlConfigError(_where(mark) or "YAML", f"not valid YAML ({problem}); fix the syntax there") from None
    except RecursionError:
        raise YamlConfigError("", "nested too deeply to be a benchmark config") from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise YamlConfigError("", "must be a mapping with an 'application' key (QUARK 2 config.yml format)")
    for key in definitions:
        del raw[key]
    _check_expanded_size(raw)
    return ParsedYaml(raw, loader.texts, loader.warnings, definitions)


def _definitions(root: Node, known: Collection[str]) -> list[str]:
    """The top-level keys outside ``known`` whose values hold nodes that the ``known`` keys' values use."""
    if not isinstance(root, MappingNode):
        return []
    used: set[int] = set()
    for key_node, value_node in root.value:
        if isinstance(key_node, ScalarNode) and key_node.value in known:
            _reach(value_node, used)
    found = []
    for key_node, value_node in root.value:
        if isinstance(key_node, ScalarNode) and key_node.tag == STR and key_node.value not in known:
            if _reach(value_node, set()) & used:
                found.append(key_node.value)
    return found


def _reach(node: Node, seen: set[int]) -> set[int]:
    """The ids of ``node`` and every node below it (each shared or recursive node once)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, MappingNode):
            stack.extend(part for pair in current.value for part in pair)
    return seen


def _check_expanded_size(raw: dict[str, Any]) -> None:
    """Refuse configs whose aliases expand to a flood (a "billion laughs" file, or an alias to itself).

    A YAML alias repeats what its anchor names without copying it, so a small file can stand for
    billions of values; hashing, validating or even printing one of them would never end.
    """
    budget = MAX_VALUES
    stack: list[tuple[Any, str]] = [(value, str(key)) for key, value in raw.items()]
    while stack:
        value, top = stack.pop()
        budget -= 1
        if budget < 0:
            raise YamlConfigError(
                top, f"expands to more than {MAX_VALUES} values (YAML aliases repeat what they name); remove them"
            )
        if isinstance(value, dict):
            stack.extend((item, top) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, top) for item in value)
