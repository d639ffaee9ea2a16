"""The QUARK module contract: ``Core``, its ``Metrics`` and the ``Instruction`` enum.

A benchmark is a stack of modules M1 -> ... -> Mn. The BenchmarkManager calls each module's
``preprocess`` on the way down and its ``postprocess`` on the way back up. Nothing here touches the
disk: modules receive data and return data, and the engine decides what is stored.

``Core`` carries QUARK 2's module attributes and methods too (``sub_options``,
``preprocessed_input``, ``get_submodule``, ``get_depending_parameters``, ...), so code written for
QUARK 2 reads the same here. QUARK 2 modules themselves need not derive from it: the engine talks
to both dialects through ``quark_cli.contract``.
"""

from __future__ import annotations

import logging
import time
from abc import ABCMeta
from collections.abc import Callable
from enum import Enum
from typing import Any

from quark_cli.plain import copy_tree


class Instruction(Enum):
    """What the BenchmarkManager does after a module phase returns.

    PROCEED: carry on walking the stack with the returned data.
    INTERRUPT: the phase handed a job to a service; store its job info and stop this stack here.
    """

    PROCEED = "PROCEED"
    INTERRUPT = "INTERRUPT"


class Metrics:
    """What one module reports about one stack run; it becomes the module's level of a record.

    Keys and their order follow QUARK 2's ``Metrics.get()`` (``module_name``, ``module_config``,
    ``total_time`` and the phase times, all in ms), so QUARK 2 tooling reads our ``results.json``.
    """

    def __init__(self, module_name: str, module_src: str | None = None) -> None:
        self.module_name = module_name
        self.module_src = module_src
        self.module_config: dict[str, Any] = {}
        self.preprocessing_time = 0.0
        self.postprocessing_time = 0.0
        self.total_time = 0.0
        self.additional_metrics: dict[str, Any] = {}

    def set_module_config(self, config: dict[str, Any]) -> None:
        self.module_config = dict(config)

    def set_preprocessing_time(self, milliseconds: float) -> None:
        self.preprocessing_time = milliseconds

    def set_postprocessing_time(self, milliseconds: float) -> None:
        self.postprocessing_time = milliseconds

    def add_metric(self, name: str, value: Any) -> None:
        """Record one value; a later call with the same name replaces it."""
        self.additional_metrics[name] = value

    def add_metric_batch(self, metrics: dict[str, Any]) -> None:
        self.additional_metrics.update(metrics)

    def validate(self) -> None:
        """Set ``total_time`` (ms) to the sum of the phase times, as QUARK 2's manager has it done."""
        self.total_time = (self.preprocessing_time or 0.0) + (self.postprocessing_time or 0.0)

    def reset(self) -> None:
        """Forget the values of a previous stack so that one module instance can serve many."""
        self.module_config = {}
        self.preprocessing_time = 0.0
        self.postprocessing_time = 0.0
        self.total_time = 0.0
        self.additional_metrics = {}

    def get(self) -> dict[str, Any]:
        """The module level as QUARK 2 writes it (without ``module_level`` and ``submodule``)."""
        source = {"module_src": self.module_src} if self.module_src else {}
        return {
            "module_name": self.module_name,
            **source,
            "module_config": copy_tree(self.module_config),
            "total_time": (self.preprocessing_time or 0.0) + (self.postprocessing_time or 0.0),
            "total_time_unit": "ms",
            "preprocessing_time": self.preprocessing_time,
            "preprocessing_time_unit": "ms",
            "postprocessing_time": self.postprocessing_time,
            "postprocessing_time_unit": "ms",
            **copy_tree(self.additional_metrics),
        }


class _CoreType(ABCMeta):
    """Puts ``Core`` after every other base of a class that mixes it with modules of other lineage.

    ``class Upgraded(AsyncCore, ExistingModule)`` lists ``Core`` (through ``AsyncCore``) before
    ``ExistingModule``; when that module does not derive from ``Core`` (a QUARK 2 module, or any
    class of another framework), Python's usual order would let ``Core``'s defaults (no parameters,
    no submodules, pass-through phases) hide the module's own. Moving ``Core`` last makes it what it
    is meant to be: the defaults of last resort. Classes whose bases all derive from ``Core`` keep
    Python's order.
    """

    def mro(cls) -> list[type]:
        order = super().mro()
        core = globals().get("Core")
        if core is None or core not in order:
            return order
        later = order[order.index(core) + 1 :]
        if all(base is object or issubclass(base, core) for base in later):
            return order
        order.remove(core)
        order.insert(order.index(object), core)
        return order


class Core(metaclass=_CoreType):
    """Base class of every module in a benchmark stack (quark-cli's dialect).

    A module declares its parameters in ``get_parameter_options`` (the config is validated against
    it), the names of the modules that may follow it in ``submodule_options`` (built by
    ``get_default_submodule``), and transforms data in ``preprocess`` / ``postprocess``. Both phases
    return ``(data, seconds)``; the default implementations pass the data through unchanged. (QUARK
    2 modules return milliseconds instead; the engine knows which dialect a module speaks.)

    The engine sets ``preprocessed_input`` / ``postprocessed_input`` to what each phase returned,
    as QUARK 2's manager does.
    """

    #: Names of the modules allowed directly below this one; empty for a leaf.
    submodule_options: list[str] = []
    #: Whether the module writes files into its ``store_dir`` (the backlog item's own folder,
    #: ``benchmarks/benchmark_<i>``; ``Application.save`` writes there). The folder is made for a
    #: stack only if one of its modules may write there: a module that writes no files says False,
    #: and a sweep of 100,000 stacks is spared as many empty folders. QUARK 2 modules, which cannot
    #: say, always get theirs.
    uses_store_dir: bool = True
    #: Whether one instance may serve every stack of a command in turn (QUARK 2's manager keeps one
    #: instance for all its stacks): the engine then builds the module once per command instead
    #: of once per stack (``quark_cli.module_cache``), resets its metrics before each stack and hands
    #: it each stack's config, as ever. A module that keeps anything else from one stack to the next
    #: in its attributes leaves this False. Stacks walked at the same time (a submit's concurrent
    #: submissions) never share one; after a stack in which module code raised, its modules are
    #: built again. Subclasses inherit the promise.
    reusable: bool = False

    def __init__(self, name: str | None = None) -> None:
        # Only what is missing is filled in: in ``class X(AsyncCore, Existing)`` the constructor of
        # ``Existing`` may run first and has then set its own name, metrics and submodules.
        state = self.__dict__
        if name is not None or "name" not in state:
            self.name = name or type(self).__name__
        metrics = state.get("metrics")
        if metrics is None or (type(metrics) is Metrics and metrics.module_name != self.name):
            self.metrics = Metrics(self.name)
        state.setdefault("submodule_options", list(type(self).submodule_options))
        state.setdefault("sub_options", [])
        state.setdefault("depending_parameters", False)
        state.setdefault("preprocessed_input", None)
        state.setdefault("postprocessed_input", None)

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        """Parameters this module accepts.

        Each entry maps a name to ``{"values": [...], "default": ..., "description": "..."}``.
        ``values`` lists the allowed values; add ``"custom_input": True`` to accept others of the
        default's type.
        """
        return {}

    def get_default_submodule(self, option: str) -> Core:
        """Build the module named ``option`` that may follow this one.

        The default builds any name listed in ``submodule_options``: a built-in module's name
        (``"Sampler"``) or a ``"package.module:Class"`` path. Raises ValueError for any other name.
        """
        if option in self.get_available_submodule_options():
            from quark_cli.modules import load_class

            return load_class(option)()
        if not self.get_available_submodule_options():
            raise ValueError(
                f"{self.name} declares no submodules; list the modules it may hand its output to in its class, "
                f"e.g. submodule_options = [{option!r}] (built-in names or 'package.module:Class')"
            )
        raise ValueError(f"{self.name} has no submodule {option!r}; choose one of {self.submodule_options}")

    def get_submodule(self, option: str) -> Core:
        """The child named ``option``: QUARK 2's name for ``get_default_submodule`` (module files aside)."""
        return self.get_default_submodule(option)

    def get_available_submodule_options(self) -> list[str]:
        return list(self.submodule_options)

    def get_available_submodules(self, option: list[Any]) -> list[str]:
        """QUARK 2: the submodules allowed for a chosen value of a ``depending_submodule`` parameter."""
        return []

    def get_depending_parameters(self, option: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """QUARK 2: parameters that exist only below the submodule ``option`` (with ``depending_parameters``)."""
        return {}

    @staticmethod
    def get_requirements() -> list[dict[str, str]]:
        """QUARK 2: pip packages the module needs, as ``[{"name": ..., "version": ...}]``."""
        return []

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        """Turn the data from the module above into the input of the module below."""
        return input_data, 0.0

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        """Turn the result of the module below into the result handed to the module above."""
        return input_data, 0.0


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``function`` and return ``(its result, seconds it took)``; for ``(data, seconds)`` phases.

    One-time costs of the process (importing myQLM or scipy) belong in ``warm_up`` before this call,
    or the first stack of every process would carry them.
    """
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


_WARMED: dict[str, float] = {}


def warm_up(what: str, prepare: Callable[[], Any]) -> None:
    """Run ``prepare`` once per process, before a phase starts its clock.

    For the one-time work of a process that is no part of a stack's work: importing heavy libraries
    (scipy costs 0.3 s, building myQLM's default QPU 0.4-2 s), so that the first stack of every
    process does not look slower than the others. ``what`` names the work (``"myQLM"``); its time
    (seconds) is logged, never added to a module's time.
    """
    if what in _WARMED:
        return
    start = time.perf_counter()
    prepare()
    seconds = _WARMED[what] = time.perf_counter() - start
    logging.getLogger("quark_cli").debug("warm-up %s: %.3f s (not counted in module times)", what, seconds)
