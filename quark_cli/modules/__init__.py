"""Built-in benchmark modules and the registry that finds them by name.

The registry maps a short name (as written in a config file) to ``"package.module:Class"``. Classes
are imported only when asked for, so that ``import quark_cli.modules`` stays cheap and does not pull
in myQLM: the CLI can list and validate configs without loading a simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quark_cli.core import Core

#: Modules that may start a benchmark stack.
APPLICATIONS: dict[str, str] = {
    "GHZ": "quark_cli.modules.ghz:GHZ",
    "MaxCut": "quark_cli.modules.maxcut:MaxCut",
}

#: Every built-in module by name. The async devices are reserved here; their file may not exist yet.
MODULES: dict[str, str] = {
    **APPLICATIONS,
    "GHZCircuit": "quark_cli.modules.ghz:GHZCircuit",
    "QAOA": "quark_cli.modules.qaoa:QAOA",
    "Sampler": "quark_cli.modules.devices:Sampler",
    "LocalAsyncSampler": "quark_cli.modules.async_devices:LocalAsyncSampler",
    "QaptivaSampler": "quark_cli.modules.async_devices:QaptivaSampler",
    "SlurmSampler": "quark_cli.modules.async_devices:SlurmSampler",
    "IBMSampler": "quark_cli.modules.ibm:IBMSampler",
}

#: The devices a circuit-producing module may hand its circuit to.
DEVICE_OPTIONS: list[str] = ["Sampler", "LocalAsyncSampler", "QaptivaSampler", "SlurmSampler", "IBMSampler"]


class ModuleLoadError(ValueError):
    """A module name or ``package.module:Class`` path that cannot be turned into a ``Core`` class.

    A ValueError because it is bad input (an unknown or unavailable module in a config), not a bug.
    """


#: Classes ``load_class`` found, by the name it was given (this process imports a module once anyway).
_loaded: dict[str, type[Core]] = {}


def load_class(path_or_name: str) -> type[Core]:
    """Import the module class for a registry name or a ``package.module:Class`` path.

    A module class is a ``Core`` subclass or any class with a module's methods (``preprocess``,
    ``postprocess``, ``get_parameter_options``): a QUARK 2 module, whatever its base. Raises
    ``ModuleLoadError`` naming the module when the name is unknown, the file does not exist (yet) or
    the attribute is not a module class. Errors raised while importing an existing file propagate
    unchanged, so real bugs are not disguised as missing modules.
    """
    from quark_cli.quark2 import is_module_class

    found = _loaded.get(path_or_name)
    if found is not None:  # a stack's modules are built again for each of 100,000 stacks
        return found
    path = MODULES.get(path_or_name, path_or_name)
    module_name, sep, class_name = path.partition(":")
    if not sep or not module_name or not class_name:
        raise ModuleLoadError(
            f"unknown module {path_or_name!r}: use a built-in name ({', '.join(MODULES)}) "
            "or a 'package.module:Class' path"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise ModuleLoadError(f"module {path_or_name!r} is not available: {module_name} does not exist") from error
        raise
    cls = getattr(module, class_name, None)
    if not is_module_class(cls):
        raise ModuleLoadError(f"module {path_or_name!r}: {module_name} has no module class {class_name!r}")
    _loaded[path_or_name] = cls
    return cls


def build_submodule(parent: Core, option: str) -> Core:
    """Build the child ``option`` of ``parent``; what every built-in ``get_default_submodule`` does."""
    if option not in parent.submodule_options:
        raise ModuleLoadError(f"{parent.name} has no submodule {option!r}; choose one of {parent.submodule_options}")
    return load_class(option)()


def settings(module: Core, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` completed with the module's defaults, so modules also work when called directly."""
    defaults = {name: option["default"] for name, option in module.get_parameter_options().items()}
    return {**defaults, **config}


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int, or a ValueError naming the parameter; guards custom inputs."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def describe_modules() -> list[dict[str, Any]]:
    """Every built-in module with its parameters and allowed submodules, for ``quark modules``.

    Builds each module to ask it (which imports its file, not myQLM); a module whose file is not
    installed is skipped.
    """
    described = []
    for name, path in MODULES.items():
        try:
            module = load_class(path)()
        except ModuleLoadError:
            continue
        described.append(
            {
                "name": name,
                "class": path,
                "application": name in APPLICATIONS,
                "submodules": module.get_available_submodule_options(),
                "parameters": module.get_parameter_options(),
            }
        )
    return described
