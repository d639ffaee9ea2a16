"""What ``quark modules`` shows: any module's parameters and submodules, built-in or the user's.

A module is named as a config names it: a built-in name (``Sampler``), a ``package.module:Class``
path (ours or a QUARK 2 module), or an entry of a QUARK 2 module file (``-m/--modules``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from quark_cli.contract import ModuleAdapter, build_module
from quark_cli.errors import ConfigError
from quark_cli.modules import APPLICATIONS, MODULES, describe_modules, load_class
from quark_cli.quark2 import entry_names, find_entry, read_module_file

SOURCE = "quark modules"


def describe(references: list[str], modules_file: Path | None = None) -> list[dict[str, Any]]:
    """One entry per module: ``{"name", "class", "application", "submodules", "parameters"}``.

    No ``references``: every built-in module, or with ``modules_file`` every top-level entry of that
    file. The current directory is searched for ``package.module`` paths, as ``python -m`` does.
    Raises ConfigError (exit 2) naming the reference that is unknown or cannot be imported or built.
    """
    entries = read_module_file(modules_file) if modules_file else None
    if not references:
        if entries is None:
            return describe_modules()
        references = entry_names(entries)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
    described = []
    for reference in references:
        try:
            described.append(_describe_one(reference, entries))
        except ConfigError as error:  # named by the reference the user typed, not by a config field
            message = str(error).removeprefix(f"{error.source}: {error.field}: ")
            raise ConfigError(SOURCE, reference, message) from None
    return described


def _describe_one(reference: str, entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    if ":" in reference:
        adapter = build_module(None, reference, None, None, entries, SOURCE, reference)
    elif find_entry(entries, reference) is not None or reference in APPLICATIONS:
        adapter = build_module(reference, None, None, None, entries, SOURCE, reference)
    elif reference in MODULES:
        adapter = ModuleAdapter(load_class(reference)(), reference)
    else:
        known = sorted({*MODULES, *entry_names(entries)})
        raise ConfigError(
            SOURCE, reference, f"unknown module; give a built-in name ({', '.join(known)}) or 'package.module:Class'"
        )
    cls = type(adapter.instance)
    return {
        "name": adapter.name,
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "application": reference in APPLICATIONS or find_entry(entries, reference) is not None,
        "submodules": adapter.submodule_names(),
        "parameters": adapter.parameter_options(),
    }
