"""Load and validate a QUARK 2 style ``config.yml`` and expand it into the benchmark backlog.

A config is a tree: the application, its ``submodules`` (alternatives, each a branch), theirs, and
so on. Every root-to-leaf path is one stack shape; every combination of the listed parameter values
along it is one backlog item. Each item runs ``repetitions`` times.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import yaml

from quark_cli.contract import ModuleAdapter, build_module
from quark_cli.errors import ConfigError
from quark_cli.quark2 import import_root

MAX_CONFIG_BYTES = 1_000_000
MAX_VALUES = 1_000_000  # scalars, lists and mappings once YAML aliases are expanded
MAX_DEPTH = 16
MAX_BACKLOG = 100_000
TOP_LEVEL_KEYS = {"application", "repetitions"}
NODE_KEYS = {"name", "module", "args", "config", "submodules"}
TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


#: How backlog items are numbered. ``quark2``: QUARK 2's order (a module's parameter combinations,
#: in the config's key order, outermost; then its branches), used for every new run. ``legacy``:
#: quark-cli 0.1.0's order (branches outermost, parameters sorted by name), kept for runs it made.
BACKLOG_ORDERS = ("quark2", "legacy")


@dataclass
class Level:
    """One module of a stack: how to build it and the parameter values it gets."""

    name: str
    module: str | None
    config: dict[str, Any]
    path: str
    args: dict[str, Any] | None = None


@dataclass
class BacklogItem:
    """One stack shape with one choice of parameter values, run ``repetitions`` times."""

    index: int
    levels: list[Level]

    @property
    def module_names(self) -> list[str]:
        return [level.name for level in self.levels]


@dataclass
class ConfigNode:
    """One module entry of the config tree: its level (config values as lists) and its branches."""

    level: Level
    children: list[ConfigNode]

    @cached_property
    def combinations(self) -> int:
        return math.prod(len(values) for values in self.level.config.values())

    @cached_property
    def starts(self) -> list[int]:
        """Where each branch's items begin among one parameter combination's items."""
        starts, total = [], 0
        for child in self.children:
            starts.append(total)
            total += child.count
        return starts

    @cached_property
    def per_combination(self) -> int:
        return sum(child.count for child in self.children) if self.children else 1

    @cached_property
    def count(self) -> int:
        return self.combinations * self.per_combination

    def item_levels(self, offset: int) -> list[Level]:
        """The levels of item ``offset`` below this node, in QUARK 2's order."""
        combination, rest = divmod(offset, self.per_combination)
        config: dict[str, Any] = {}
        for name, values in reversed(self.level.config.items()):  # the last parameter varies fastest
            combination, position = divmod(combination, len(values))
            config[name] = values[position]
        own = Level(
            self.level.name, self.level.module, dict(reversed(config.items())), self.level.path, self.level.args
        )
        if not self.children:
            return [own]
        branch = bisect.bisect_right(self.starts, rest) - 1
        return [own, *self.children[branch].item_levels(rest - self.starts[branch])]

    def paths(self) -> list[list[Level]]:
        """Every root-to-leaf list of levels (config values still lists)."""
        if not self.children:
            return [[self.level]]
        return [[self.level, *tail] for child in self.children for tail in child.paths()]


class _Backlog(Sequence[BacklogItem]):
    """A sequence of backlog items, each made when asked for (``_levels``)."""

    _length = 0

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> BacklogItem: ...

    @overload
    def __getitem__(self, index: slice) -> list[BacklogItem]: ...

    def __getitem__(self, index: int | slice) -> BacklogItem | list[BacklogItem]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("backlog index out of range")
        return BacklogItem(index=index, levels=self._levels(index))

    def _levels(self, index: int) -> list[Level]:
        raise NotImplementedError


class Backlog(_Backlog):
    """The backlog items in QUARK 2's order.

    QUARK 2 expands a module's parameter combinations (``itertools.product`` in the config's key
    order) outermost and, inside each, its branches one after the other, recursively. Items are made
    when asked for: a collect of a 10,000-item run continues a handful of stacks, and making every
    item took longer than the rest.
    """

    def __init__(self, root: ConfigNode) -> None:
        self._root = root
        self._length = root.count

    def _levels(self, index: int) -> list[Level]:
        return self._root.item_levels(index)


class LegacyBacklog(_Backlog):
    """quark-cli 0.1.0's numbering (branches outermost, parameters by name), for runs it made."""

    def __init__(self, paths: list[list[Level]]) -> None:
        #: Per root-to-leaf path: its levels, and each (level, parameter, values) in product order.
        self._parts: list[tuple[list[Level], list[tuple[int, str, list[Any]]]]] = []
        self._starts: list[int] = []
        total = 0
        for levels in paths:
            digits = [(i, name, level.config[name]) for i, level in enumerate(levels) for name in sorted(level.config)]
            self._parts.append((levels, digits))
            self._starts.append(total)
            total += math.prod(len(values) for _, _, values in digits)
        self._length = total

    def _levels(self, index: int) -> list[Level]:
        part = bisect.bisect_right(self._starts, index) - 1
        levels, digits = self._parts[part]
        offset = index - self._starts[part]
        configs: list[dict[str, Any]] = [{} for _ in levels]
        for level, name, values in reversed(digits):  # the last parameter varies fastest (itertools.product)
            offset, position = divmod(offset, len(values))
            configs[level][name] = values[position]
        return [
            Level(lv.name, lv.module, dict(sorted(config.items())), lv.path, lv.args)
            for lv, config in zip(levels, configs, strict=True)
        ]


@dataclass
class BenchmarkConfig:
    """A validated config: the parsed file, its hash, its backlog, and what was noticed on the way."""

    source: str
    raw: dict[str, Any]
    repetitions: int
    backlog: Sequence[BacklogItem] = field(default_factory=list)
    search_path: str | None = None
    #: QUARK 2 module-file entries (``--modules FILE``) that config names resolve against, or None.
    module_entries: list[dict[str, Any]] | None = None
    backlog_order: str = "quark2"
    #: Values QUARK 2 modules do not list but accept unchecked, as QUARK 2 does; said, not refused.
    warnings: list[str] = field(default_factory=list)
    #: The root of the config tree (modules built once to check it), for ``quark validate``.
    tree: ConfigNode | None = None
    #: Folders that provided the top-level packages of the modules outside quark-cli (``import_root``).
    import_paths: list[str] = field(default_factory=list)

    @cached_property
    def config_hash(self) -> str:
        """Computed once: every record carries it."""
        return config_hash(self.raw)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe loader (libyaml's when installed: ~10x faster) that refuses duplicate mapping keys."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def config_hash(raw: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the config: the same in every process and on every machine."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_config_text(text: str, source: str) -> dict[str, Any]:
    """Parse YAML safely (no tags, no duplicate keys, bounded size) into a mapping."""
    if len(text.encode(errors="replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(source, "", f"file is larger than {MAX_CONFIG_BYTES} bytes; a benchmark config is small")
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(source, where, f"not valid YAML ({problem}); fix the syntax there") from None
    except RecursionError:
        raise ConfigError(source, "", "nested too deeply to be a benchmark config") from None
    if not isinstance(raw, dict):
        raise ConfigError(source, "", "must be a mapping with an 'application' key (QUARK 2 config.yml format)")
    _check_expanded_size(raw, source)
    return raw


def _check_expanded_size(raw: dict[str, Any], source: str) -> None:
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
            raise ConfigError(
                source,
                top,
                f"expands to more than {MAX_VALUES} values (YAML aliases repeat what they name); remove them",
            )
        if isinstance(value, dict):
            stack.extend((item, top) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, top) for item in value)


def load_config(
    path: str | Path, module_entries: list[dict[str, Any]] | None = None, backlog_order: str = "quark2"
) -> BenchmarkConfig:
    """Read, validate and expand the config file at ``path`` (module names resolved in ``module_entries``)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "no such file; give the path of a config.yml") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, "", f"cannot be read ({error.__class__.__name__}: {error})") from None
    return build_config(
        parse_config_text(text, source),
        source,
        search_path=str(path.resolve().parent),
        module_entries=module_entries,
        backlog_order=backlog_order,
    )


def build_config(
    raw: dict[str, Any],
    source: str,
    search_path: str | None = None,
    module_entries: list[dict[str, Any]] | None = None,
    backlog_order: str = "quark2",
) -> BenchmarkConfig:
    """Validate a parsed config against its modules and expand its backlog.

    Every module of the tree is built once (which imports its code) and asked for its parameters and
    submodules; raises ConfigError naming the file and field on the first problem.
    """
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(source, unknown[0], f"unknown key; a config has only {sorted(TOP_LEVEL_KEYS)}")
    if "application" not in raw:
        raise ConfigError(source, "application", "missing; name the benchmark application, e.g. 'name: MaxCut'")
    repetitions = raw.get("repetitions", 1)
    if not isinstance(repetitions, int) or isinstance(repetitions, bool) or not 1 <= repetitions <= 10_000:
        raise ConfigError(source, "repetitions", f"must be a whole number from 1 to 10000, not {repetitions!r}")
    if backlog_order not in BACKLOG_ORDERS:
        raise ConfigError(source, "", f"unknown backlog order {backlog_order!r}; known: {list(BACKLOG_ORDERS)}")
    warnings: list[str] = []
    roots: dict[str, None] = {}
    with module_search_path(search_path):
        tree = _expand_node(raw["application"], None, "application", source, 0, module_entries, (warnings, roots))
    backlog: Sequence[BacklogItem] = Backlog(tree) if backlog_order == "quark2" else LegacyBacklog(tree.paths())
    if len(backlog) > MAX_BACKLOG:
        raise ConfigError(source, "application", f"expands to more than {MAX_BACKLOG} backlog items")
    return BenchmarkConfig(
        source=source,
        raw=raw,
        repetitions=repetitions,
        backlog=backlog,
        search_path=search_path,
        module_entries=module_entries,
        backlog_order=backlog_order,
        warnings=warnings,
        tree=tree,
        import_paths=list(roots),
    )


def _expand_node(
    node: Any,
    parent: ModuleAdapter | None,
    path: str,
    source: str,
    depth: int,
    entries: list[dict[str, Any]] | None,
    notes: tuple[list[str], dict[str, None]],
) -> ConfigNode:
    """The config tree below ``node``, each level's config holding value lists.

    ``notes`` gathers warnings and the import roots of the modules outside quark-cli on the way.
    """
    warnings, roots = notes
    if depth > MAX_DEPTH:
        raise ConfigError(source, path, f"stacks deeper than {MAX_DEPTH} modules are not supported")
    if not isinstance(node, dict):
        raise ConfigError(source, path, "must be a mapping with 'name' (or 'module'), 'config' and 'submodules'")
    unknown = sorted(set(node) - NODE_KEYS)
    if unknown:
        raise ConfigError(source, f"{path}.{unknown[0]}", f"unknown key; a module entry has only {sorted(NODE_KEYS)}")
    module_ref = node.get("module")
    name = node.get("name")
    args = node.get("args")
    if module_ref is not None and not isinstance(module_ref, str):
        raise ConfigError(source, f"{path}.module", "must be a string 'package.module:ClassName'")
    if name is not None and not isinstance(name, str):
        raise ConfigError(source, f"{path}.name", f"must be a module name (a string), not {name!r}")
    if args is not None and (not module_ref or not isinstance(args, dict)):
        raise ConfigError(source, f"{path}.args", "constructor arguments: a mapping, with 'module: pkg.mod:Class'")
    adapter = build_module(name, module_ref, args, parent, entries, source, path)
    if not type(adapter.instance).__module__.startswith("quark_cli."):
        root = import_root(type(adapter.instance))
        if root:
            roots[root] = None
    name = name or adapter.label
    submodules = node.get("submodules") or []
    if not isinstance(submodules, list):
        raise ConfigError(source, f"{path}.submodules", "must be a list of module entries")
    child_names = [child.get("name") for child in submodules if isinstance(child, dict)]
    values = _validate_parameters(adapter, node.get("config"), source, f"{path}.config", child_names, warnings)
    level = Level(name=name, module=module_ref, config=values, path=path, args=args)
    if not submodules:
        options = adapter.submodule_names()
        if options:
            raise ConfigError(source, f"{path}.submodules", f"{name} needs a submodule; choose one of {options}")
        return ConfigNode(level, [])
    children = [
        _expand_node(child, adapter, f"{path}.submodules[{index}]", source, depth + 1, entries, notes)
        for index, child in enumerate(submodules)
    ]
    return ConfigNode(level, children)


def _validate_parameters(
    module: ModuleAdapter, given: Any, source: str, path: str, children: list[Any], warnings: list[str]
) -> dict[str, list[Any]]:
    """Each parameter as a non-empty list of values, in the config's order.

    quark-cli modules: values must be allowed, and parameters left out get the module's default.
    QUARK 2 modules are checked as QUARK 2 treats them: a parameter may also come from
    ``get_depending_parameters``; values outside ``values`` are passed on (with a warning unless
    ``custom_input`` or ``allow_ranges`` invites them), types are not checked, and nothing is filled in.
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(source, path, "must be a mapping of parameter names to lists of values")
    try:
        options = module.parameter_options()
        if module.quark2:
            declared = {name: value for name, value in given.items() if name in options}
            named = [child for child in children if isinstance(child, str)]
            options = {**options, **module.depending_parameter_options(named, declared)}
    except Exception as error:  # module code
        raise ConfigError(
            source, path, f"{module.label} cannot list its parameters ({type(error).__name__}: {error})"
        ) from None
    values: dict[str, list[Any]] = {}
    for name, value in given.items():
        field_path = f"{path}.{name}"
        if name not in options:
            known = sorted(options) or "none"
            raise ConfigError(source, field_path, f"unknown parameter of {module.label}; known: {known}")
        listed = value if isinstance(value, list) else [value]
        if not listed:
            raise ConfigError(source, field_path, "empty list; give at least one value")
        for item in listed:
            if module.quark2:
                _note_unlisted(options[name], item, source, field_path, module.label, warnings)
            else:
                _check_value(options[name], item, source, field_path)
        values[name] = listed
    if not module.quark2:
        for name, option in options.items():
            if name not in values:
                values[name] = [option.get("default", (option.get("values") or [None])[0])]
    return values


def _note_unlisted(option: Any, value: Any, source: str, path: str, module: str, warnings: list[str]) -> None:
    allowed = option.get("values") if isinstance(option, dict) else None
    if not allowed or value in allowed or option.get("custom_input") or option.get("allow_ranges"):
        return
    warnings.append(f"{source}: {path}: {value!r} is not among {module}'s values {allowed}; passed on unchecked")


def _check_value(option: dict[str, Any], value: Any, source: str, path: str) -> None:
    allowed = option.get("values") or []
    if value in allowed and type(value) is type(allowed[allowed.index(value)]):
        return
    if option.get("custom_input"):
        expected = type(option.get("default", allowed[0] if allowed else value))
        numeric = expected is float and isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool) or numeric:
            return
        kind = TYPE_NAMES.get(expected, expected.__name__)
        raise ConfigError(source, path, f"{value!r} is not {kind}; give {kind} or one of {allowed}")
    if isinstance(value, (dict, list)):
        raise ConfigError(source, path, f"nested value {value!r} is not allowed; choose from {allowed}")
    raise ConfigError(source, path, f"{value!r} is not allowed; choose from {allowed}")


@contextmanager
def module_search_path(directory: str | None):
    """Let ``module: my_mod:Class`` find a file next to the config the user pointed at."""
    if not directory or directory in sys.path:
        yield
        return
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        if directory in sys.path:
            sys.path.remove(directory)
