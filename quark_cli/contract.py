"""One module contract, two dialects: how the engine builds and calls every module.

quark-cli's own modules (``quark_cli.Core``; phases return seconds) and QUARK 2 modules (anything with
QUARK 2's Core methods, whatever its base; phases return milliseconds) are called through
``ModuleAdapter``, which does for both what QUARK 2's BenchmarkManager does: sets
``preprocessed_input`` / ``postprocessed_input``, passes ``store_dir``, ``rep_count`` and
``previous_job_info``, records the phase times (always ms) and the module config in the module's
metrics, validates the metrics, and calls an application's ``save``. Children are built from the
parent's module-file entries (``sub_options``) when it has them, else by ``get_default_submodule``.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
from typing import Any

from quark_cli.async_core import AsyncCore
from quark_cli.core import Instruction, Metrics
from quark_cli.errors import ConfigError
from quark_cli.interrupts import raised_count, reraise_signal
from quark_cli.plain import SMALL_INT, copy_tree
from quark_cli.quark2 import (
    as_instruction,
    build_from_entry,
    entry_names,
    find_entry,
    git_revision,
    import_root,
    is_module_class,
    outside_quark2_source,
    speaks_quark2,
)


class ModuleAdapter:
    """One module instance as the engine sees it.

    ``name`` is the name the config gives the module (QUARK 2's display name, e.g. ``Simulated
    Annealer``); ``instance`` is the module object itself, handed to user code unchanged.
    """

    def __init__(self, instance: Any, name: str, from_module_file: bool = False) -> None:
        self.instance = instance
        self.name = name
        self.quark2 = speaks_quark2(type(instance))
        self.is_async = isinstance(instance, AsyncCore)
        #: A module that saves (``Application.save``) gets its folder whatever it says.
        self.uses_store_dir = bool(getattr(instance, "uses_store_dir", True)) or callable(
            getattr(instance, "save", None)
        )
        #: Metrics the module carries from its construction, put back after every reset: like QUARK 2,
        #: the git revision of a module-file module from outside QUARK 2's own source.
        self._extra_metrics: dict[str, Any] = {}
        if from_module_file and outside_quark2_source(type(instance)):
            root = import_root(type(instance))
            if root:
                revision, uncommitted = git_revision(root)
                self._extra_metrics = {
                    "module_git_revision_number": revision,
                    "module_git_uncommitted_changes": uncommitted,
                }

    @property
    def label(self) -> str:
        """The module's own name (``module.name``), used in messages."""
        return str(getattr(self.instance, "name", None) or type(self.instance).__name__)

    @property
    def time_unit_factor(self) -> float:
        """What a phase's time is multiplied by to give ms: 1000 for seconds (ours), 1 for QUARK 2."""
        return 1.0 if self.quark2 else 1000.0

    # ---- what the config is checked against

    def parameter_options(self) -> dict[str, dict[str, Any]]:
        options = self.instance.get_parameter_options()
        if not isinstance(options, dict):
            raise TypeError(f"{type(self.instance).__name__}.get_parameter_options() returned {type(options).__name__}")
        return options

    def depending_parameter_options(self, children: list[str], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """QUARK 2's parameters that exist only below some submodules (``depending_parameters``)."""
        if not getattr(self.instance, "depending_parameters", False):
            return {}
        found: dict[str, dict[str, Any]] = {}
        for child in children:
            found.update(self.instance.get_depending_parameters(child, config) or {})
        return found

    def submodule_names(self) -> list[str]:
        """The names allowed directly below: the module file's entries when given, else the module's own."""
        entries = getattr(self.instance, "sub_options", None)
        if entries:
            return entry_names(entries)
        return list(self.instance.get_available_submodule_options() or [])

    def child(self, name: str) -> ModuleAdapter:
        """Build the submodule called ``name`` (raises what the module raises for an unknown one)."""
        entry = find_entry(getattr(self.instance, "sub_options", None), name)
        if entry is not None:
            return ModuleAdapter(build_from_entry(entry), name, from_module_file=True)
        return ModuleAdapter(self.instance.get_default_submodule(name), name)

    # ---- one walk of one stack

    def begin(self, config: dict[str, Any]) -> None:
        """Before a stack's first phase: forget the previous stack's metrics and job manager (a
        module built once for many stacks, ``Core.reusable``), record this config."""
        if self.is_async:
            self.instance.job_manager = None
        metrics = self.instance.metrics
        metrics.reset()
        metrics.set_module_config(config)
        if self._extra_metrics:
            metrics.add_metric_batch(dict(self._extra_metrics))

    def phase(self, phase: str, data: Any, config: dict[str, Any], kwargs: dict[str, Any]) -> tuple[Instruction, Any]:
        """Run ``preprocess`` or ``postprocess``; record its time (ms) and output as QUARK 2's manager does.

        ``kwargs`` holds QUARK 2's ``store_dir``, ``rep_count``, ``previous_job_info`` and, for an
        ``AsyncCore``, the engine's job plumbing (left out for other modules). Returns ``(instruction,
        output)``; a time that is not a finite number raises TypeError naming the module.
        """
        method = self.instance.preprocess if phase == "pre" else self.instance.postprocess
        result = method(data, config, **kwargs)
        instruction, output, duration = self._normalise(result, phase)
        milliseconds = duration * self.time_unit_factor
        if phase == "pre":
            self.instance.preprocessed_input = output
            self.instance.metrics.set_preprocessing_time(milliseconds)
        else:
            self.instance.postprocessed_input = output
            self.instance.metrics.set_postprocessing_time(milliseconds)
        return instruction, output

    def save(self, store_dir: str, rep_count: int) -> None:
        """An application's ``save(path, iter_count)``, called after its preprocess (QUARK 2's manager does)."""
        save = getattr(self.instance, "save", None)
        if callable(save):
            save(store_dir, rep_count)

    def level(self, index: int, submodule: dict[str, Any] | None) -> dict[str, Any]:
        """This module's level of the stack's record: ``metrics.get()``, ``module_level``, ``submodule``."""
        metrics = self.instance.metrics
        if metrics.preprocessing_time is None:
            metrics.set_preprocessing_time(0.0)
        if metrics.postprocessing_time is None:
            metrics.set_postprocessing_time(0.0)
        validate = getattr(metrics, "validate", None)
        if callable(validate):
            validate()
        level = metrics.get()
        if type(metrics) is not Metrics:  # ours copies; QUARK 2's hands out its own dicts
            level = copy_tree(level)
        level["module_level"] = index
        level["submodule"] = submodule or {}
        return level

    def _normalise(self, result: Any, phase: str) -> tuple[Instruction, Any, float]:
        """``(data, time)`` or ``(Instruction, data, time)``, with QUARK 2's ``Instruction`` matched by name."""
        if isinstance(result, tuple) and len(result) == 3:
            instruction = as_instruction(result[0])
            if instruction is not None:
                return instruction, result[1], self._duration(result[2], phase)
        if isinstance(result, tuple) and len(result) == 2:
            return Instruction.PROCEED, result[0], self._duration(result[1], phase)
        raise TypeError(
            f"{self.label}.{phase}process must return (data, time) or (Instruction, data, time), "
            f"got {type(result).__name__}"
        )

    def _duration(self, value: Any, phase: str) -> float:
        """A phase's time as a float; QUARK 2's manager refuses None too (``Metrics.validate``)."""
        kind = type(value)
        real = kind is float or kind is int or (kind is not bool and isinstance(value, numbers.Real))  # ABC last
        try:
            if real and math.isfinite(value):
                return float(value)
        except OverflowError:  # an integer past the largest float: no time either
            pass
        shown = (
            repr(value)
            if not isinstance(value, int) or abs(value) < SMALL_INT
            else f"an integer of {value.bit_length()} bits"
        )
        raise TypeError(
            f"{self.label}.{phase}process returned {shown} as its time; a phase returns (data, time), "
            "time a finite number"
        )


def build_module(
    name: str | None,
    module_ref: str | None,
    args: dict[str, Any] | None,
    parent: ModuleAdapter | None,
    entries: list[dict[str, Any]] | None,
    source: str = "config",
    path: str = "application",
) -> ModuleAdapter:
    """Build the module of one config entry; ConfigError naming ``path`` on any failure.

    ``module: pkg.mod:Class`` (with optional ``args``) wins; else a top-level name is looked up in the
    module file's ``entries`` and then among the built-in applications, and a child's name among its
    parent's submodules.
    """
    from quark_cli.modules import APPLICATIONS

    if module_ref:
        cls = _import(module_ref, source, f"{path}.module")
        return _built(lambda: ModuleAdapter(_construct(cls, args), name or cls.__name__), cls.__name__, source, path)
    if not name:
        raise ConfigError(source, f"{path}.name", "missing; give a module name or 'module: pkg.mod:Class'")
    if parent is None:
        entry = find_entry(entries, name)
        if entry is not None:
            return _built(
                lambda: ModuleAdapter(build_from_entry(entry), name, from_module_file=True), name, source, path, entry
            )
        if name not in APPLICATIONS:
            known = sorted({*entry_names(entries), *APPLICATIONS})
            raise ConfigError(source, f"{path}.name", f"unknown application {name!r}; available: {known}")
        cls = _import(APPLICATIONS[name], source, f"{path}.name")
        return _built(lambda: ModuleAdapter(_construct(cls, args), name), name, source, path)
    options = parent.submodule_names()
    if not options and not parent.quark2:
        raise ConfigError(
            source,
            f"{path}.name",
            f"{parent.label} declares no submodules; add submodule_options = [{name!r}] to its class "
            "(built-in names or 'package.module:Class'), or give this child as 'module: package.module:Class'",
        )
    if name not in options:
        raise ConfigError(source, f"{path}.name", f"{parent.label} has no submodule {name!r}; choose one of {options}")
    entry = find_entry(getattr(parent.instance, "sub_options", None), name)
    return _built(lambda: parent.child(name), name, source, f"{path}.name", entry)


def _import(reference: str, source: str, field: str) -> type:
    """The module class a ``pkg.mod:Class`` reference (or a built-in name) names; ConfigError at ``field``."""
    from quark_cli.modules import ModuleLoadError, load_class

    signals = raised_count()
    try:
        return load_class(reference)
    except ModuleLoadError as error:
        if isinstance(error.__cause__, ModuleNotFoundError):
            raise ConfigError(source, field, _missing_module(error.__cause__, reference)) from None
        raise ConfigError(source, field, f"cannot import {reference!r} ({error})") from None
    except ModuleNotFoundError as error:
        raise ConfigError(source, field, _missing_module(error, reference)) from None
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # a user's module may raise anything while importing, SystemExit too
        reraise_signal(signals, error)
        raise ConfigError(source, field, f"cannot import {reference!r} ({type(error).__name__}: {error})") from None


def _built(make: Any, what: str, source: str, field: str, entry: dict[str, Any] | None = None) -> ModuleAdapter:
    """``make()``, with whatever module code raises (importing a child, constructing) as a ConfigError.

    ``entry`` is the module-file entry being built, if any: its module path and requirements make a
    missing import's message precise.
    """
    signals = raised_count()
    try:
        return make()
    except ConfigError:
        raise
    except ModuleNotFoundError as error:
        raise ConfigError(source, field, _missing_module(error, what, entry)) from None
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # user and QUARK 2 code may raise anything while importing or building
        reraise_signal(signals, error)
        raise ConfigError(source, field, f"cannot create {what} ({type(error).__name__}: {error})") from None


def _construct(cls: type, args: dict[str, Any] | None) -> Any:
    if not is_module_class(cls):
        raise TypeError(f"{cls!r} is not a module class (no preprocess, postprocess and get_parameter_options)")
    return cls(**(args or {}))


def _missing_module(error: ModuleNotFoundError, what: str, entry: dict[str, Any] | None = None) -> str:
    """What to do when importing ``what`` found no module ``error.name``.

    The module's own top-level package missing: a folder to put on PYTHONPATH. That package found
    but not the named submodule: a wrong name. Anything else: a package the module needs is not
    installed (the module file's ``requirements`` name it, when given).
    """
    missing = str(error.name)
    top = missing.split(".")[0]
    module = entry["module"] if entry else what.split(":")[0]
    if top == module.split(".")[0] and importlib.util.find_spec(top) is None:
        directory = (entry or {}).get("dir")
        gone = f" (the entry's dir {directory} is not a folder)" if directory and not os.path.isdir(directory) else ""
        return (
            f"cannot import {what!r}: no module named {missing!r}{gone}; put the folder that holds {top!r} "
            "on PYTHONPATH (for QUARK 2's modules: the src folder of its checkout)"
        )
    if importlib.util.find_spec(top) is not None:
        return f"cannot import {what!r}: no module named {missing!r}; check the module name"
    wanted = [
        f"{item.get('name')}=={item['version']}" if item.get("version") else str(item.get("name"))
        for item in (entry or {}).get("requirements") or []
        if isinstance(item, dict) and item.get("name")
    ]
    listed = f" (its entry in the module file lists: {', '.join(wanted)})" if wanted else ""
    return f"cannot import {what!r}: it needs {top!r}, which is not installed in this Python; install it{listed}"
