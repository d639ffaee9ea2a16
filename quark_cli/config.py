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
from typing import TYPE_CHECKING, Any, overload

from quark_cli.contract import ModuleAdapter, build_module
from quark_cli.errors import ConfigError
from quark_cli.parameters import ParameterCheck, validate_parameters
from quark_cli.quark2 import import_root

if TYPE_CHECKING:
    from quark_cli.config_yaml import ParsedYaml

MAX_DEPTH = 16
MAX_BACKLOG = 100_000
TOP_LEVEL_KEYS = {"application", "repetitions"}
NODE_KEYS = {"name", "module", "args", "config", "submodules"}


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


def config_hash(raw: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the config: the same in every process and on every machine."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_config_text(text: str, source: str, rules: str = "1.2") -> ParsedYaml:
    """Parse a config's YAML ``text`` (see ``config_yaml``); ConfigError naming ``source``, line and column."""
    from quark_cli.config_yaml import YamlConfigError, read_yaml  # PyYAML: only when a config is read as YAML

    try:
        return read_yaml(text, rules, known=TOP_LEVEL_KEYS)
    except YamlConfigError as error:
        raise ConfigError(source, error.where, str(error)) from None


def read_config_text(path: str | Path) -> str:
    """The config file at ``path`` as text, read once (a pipe too: ``quark submit <(...)``).

    At most ``MAX_CONFIG_BYTES`` + 1 characters are read: a larger file, or a device such as
    ``/dev/zero``, is then refused by ``parse_config_text``'s size check instead of filling memory.
    Raises ConfigError naming the file.
    """
    from quark_cli.config_yaml import MAX_CONFIG_BYTES

    source = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(source, "", "no such file; give the path of a config.yml") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, "", f"cannot be read ({error.__class__.__name__}: {error})") from None


def load_config(
    path: str | Path,
    module_entries: list[dict[str, Any]] | None = None,
    backlog_order: str = "quark2",
    text: str | None = None,
) -> BenchmarkConfig:
    """Read, validate and expand the config file at ``path`` (module names resolved in
    ``module_entries``); ``text``, if given, is its content as ``read_config_text`` read it."""
    path = Path(path)
    source = str(path)
    if text is None:
        text = read_config_text(path)
    parsed = parse_config_text(text, source)
    return build_config(
        parsed.raw,
        source,
        parsed=parsed,
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
    parsed: ParsedYaml | None = None,
) -> BenchmarkConfig:
    """Validate a parsed config against its modules and expand its backlog.

    Every module of the tree is built once (which imports its code) and asked for its parameters and
    submodules; raises ConfigError naming the file and field on the first problem. ``parsed`` (the
    YAML reading of ``raw``, when it was just read) lets errors quote values as written and adds its
    warnings.
    """
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(source, unknown[0], f"unknown key; a config has only {sorted(TOP_LEVEL_KEYS)}")
    if "application" not in raw:
        raise ConfigError(source, "application", "missing; name the benchmark application, e.g. 'name: MaxCut'")
    repetitions = raw.get("repetitions", 1)
    check = ParameterCheck(source, parsed, [f"{source}: {warning}" for warning in parsed.warnings] if parsed else [])
    if not isinstance(repetitions, int) or isinstance(repetitions, bool) or not 1 <= repetitions <= 10_000:
        shown = check.shown(raw, "repetitions")
        raise ConfigError(source, "repetitions", f"must be a whole number from 1 to 10000, not {shown}")
    if backlog_order not in BACKLOG_ORDERS:
        raise ConfigError(source, "", f"unknown backlog order {backlog_order!r}; known: {list(BACKLOG_ORDERS)}")
    roots: dict[str, None] = {}
    with module_search_path(search_path):
        tree = _expand_node(raw["application"], None, "application", 0, module_entries, (check, roots))
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
        warnings=check.warnings,
        tree=tree,
        import_paths=list(roots),
    )


def _expand_node(
    node: Any,
    parent: ModuleAdapter | None,
    path: str,
    depth: int,
    entries: list[dict[str, Any]] | None,
    notes: tuple[ParameterCheck, dict[str, None]],
) -> ConfigNode:
    """The config tree below ``node``, each level's config holding value lists.

    ``notes`` gathers warnings and the import roots of the modules outside quark-cli on the way.
    """
    check, roots = notes
    source = check.source
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
    values = validate_parameters(adapter, node.get("config"), f"{path}.config", child_names, check)
    level = Level(name=name, module=module_ref, config=values, path=path, args=args)
    if not submodules:
        options = adapter.submodule_names()
        if options:
            raise ConfigError(source, f"{path}.submodules", f"{name} needs a submodule; choose one of {options}")
        return ConfigNode(level, [])
    children = [
        _expand_node(child, adapter, f"{path}.submodules[{index}]", depth + 1, entries, notes)
        for index, child in enumerate(submodules)
    ]
    return ConfigNode(level, children)


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
