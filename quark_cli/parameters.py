"""Check the values a config gives a module's parameters against the module's parameter options.

A parameter option (``Core.get_parameter_options``) is ``{"values": [...], "default": ...,
"description": ...}`` and may add:

* ``custom_input: True``: values outside ``values`` are accepted when they have the default's type
  (a whole number where the default is one; any number where it is a float);
* ``min`` / ``max``: the inclusive range a value must lie in (what the module can compute);
* ``note_above: [limit, note]``: values above ``limit`` are accepted with ``note`` said as a warning
  (e.g. "the exact optimum is skipped").

quark-cli modules are held to all of it, so ``quark validate`` and ``quark submit`` refuse what
``quark run`` would fail on, before anything is submitted. QUARK 2 modules are checked as QUARK 2
checks them: values outside their lists pass with a warning, types are not checked, nothing is
filled in. For both, YAML 1.1's ``yes``/``no``/``on``/``off`` written for a boolean parameter are
taken as true/false (YAML 1.2 reads them as text), with a warning saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quark_cli.contract import ModuleAdapter
from quark_cli.errors import ConfigError
from quark_cli.interrupts import raised_count, reraise_signal

if TYPE_CHECKING:
    from quark_cli.config_yaml import ParsedYaml

#: YAML 1.1's booleans beyond true/false: text under YAML 1.2 (``quark_cli.config_yaml``), taken as
#: booleans only where a parameter is boolean (``config.py`` says so in a warning).
YAML11_BOOLEANS = {
    **dict.fromkeys(("yes", "Yes", "YES", "y", "Y", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "n", "N", "off", "Off", "OFF"), False),
}

TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


@dataclass
class ParameterCheck:
    """What checking a config's parameters needs and notices: the file, its YAML texts, warnings."""

    source: str
    parsed: ParsedYaml | None = None
    warnings: list[str] = field(default_factory=list)

    def shown(self, container: Any, key: Any) -> str:
        """``container[key]`` as the user wrote it (```010```) when read from YAML, else its repr."""
        return self.parsed.shown(container, key) if self.parsed else repr(container[key])

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {path}: {message}")


def validate_parameters(
    module: ModuleAdapter, given: Any, path: str, children: list[Any], check: ParameterCheck
) -> dict[str, list[Any]]:
    """Each parameter of ``module`` as a non-empty list of values, in the config's order.

    ``given`` is the module entry's ``config`` mapping (None for none), ``path`` its place in the
    config (``application.submodules[0].config``), ``children`` the names of its submodule entries
    (QUARK 2's ``get_depending_parameters`` takes them). quark-cli modules get their defaults for
    the parameters left out. Raises ConfigError naming the file, the field and the value as written.
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(check.source, path, "must be a mapping of parameter names to lists of values")
    signals = raised_count()
    try:
        options = module.parameter_options()
        if module.quark2:
            declared = {name: value for name, value in given.items() if name in options}
            named = [child for child in children if isinstance(child, str)]
            options = {**options, **module.depending_parameter_options(named, declared)}
    except Exception as error:  # module code
        reraise_signal(signals, error)
        raise ConfigError(
            check.source, path, f"{module.label} cannot list its parameters ({type(error).__name__}: {error})"
        ) from None
    values: dict[str, list[Any]] = {}
    for name, value in given.items():
        field_path = f"{path}.{name}"
        if name not in options:
            known = sorted(options) or "none"
            raise ConfigError(check.source, field_path, f"unknown parameter of {module.label}; known: {known}")
        container, keys = (value, range(len(value))) if isinstance(value, list) else (given, [name])
        if not keys:
            raise ConfigError(check.source, field_path, "empty list; give at least one value")
        option = options[name] if isinstance(options[name], dict) else {}
        boolean = _is_boolean(option)
        checked = None if module.quark2 else _ValueCheck(option)
        if checked is not None and not boolean:
            given_values = [container[key] for key in keys]
            if checked.passes_all(given_values):
                values[name] = given_values
                continue
        listed = []
        for key in keys:
            item = _as_boolean(container, key, field_path, check) if boolean else container[key]
            if checked is None:
                _note_unlisted(option, item, field_path, module.label, check)
            else:
                checked(item, field_path, container, key, check)
            listed.append(item)
        values[name] = listed
    if not module.quark2:
        for name, option in options.items():
            if name not in values:
                values[name] = [option.get("default", (option.get("values") or [None])[0])]
    return values


def _is_boolean(option: dict[str, Any]) -> bool:
    """True if the option's values and default are true or false (None aside)."""
    choices = [*(option.get("values") or []), option.get("default")]
    return any(isinstance(choice, bool) for choice in choices) and all(
        isinstance(choice, bool) for choice in choices if choice is not None
    )


def _as_boolean(container: Any, key: Any, path: str, check: ParameterCheck) -> Any:
    """``yes``/``no``/``on``/``off`` as true/false for a boolean parameter (said in a warning)."""
    value = container[key]
    if not (isinstance(value, str) and value in YAML11_BOOLEANS):
        return value
    converted = YAML11_BOOLEANS[value]
    check.warn(
        path,
        f"`{value}` taken as {str(converted).lower()} (the parameter is true or false; YAML 1.2 reads {value} "
        f"as text): write {str(converted).lower()}",
    )
    return converted


def _note_unlisted(option: dict[str, Any], value: Any, path: str, module: str, check: ParameterCheck) -> None:
    allowed = option.get("values")
    if not allowed or value in allowed or option.get("custom_input") or option.get("allow_ranges"):
        return
    check.warn(path, f"{value!r} is not among {module}'s values {allowed}; passed on unchecked")


class _ValueCheck:
    """Refuse a value of the wrong type or outside an option's range; warn above ``note_above``.

    What it needs of the option is worked out once: a sweep's parameter has 100,000 values, checked
    by every command that reads the config (a check that worked it out again for each value took
    0.2 s of a collect).
    """

    def __init__(self, option: dict[str, Any]) -> None:
        self.allowed = option.get("values") or []
        self.custom = bool(option.get("custom_input"))
        #: None: the value's own type (no default, no values to take it from)
        self.expected = (
            type(option["default"]) if "default" in option else (type(self.allowed[0]) if self.allowed else None)
        )
        self.bounds = range_text(option)
        self.low, self.high = option.get("min"), option.get("max")
        self.limit, self.note = option.get("note_above") or (None, None)

    def passes_all(self, values: list[Any]) -> bool:
        """True if each of ``values`` passes as it is, with no warning, for what one pass over them
        can tell: an option that takes any value of its type, without range or note, and values all
        of exactly that type (a sweep's 100,000 numbers: 5 ms, against 90 ms a value at a time).
        False says nothing: each value is then checked alone."""
        expected = self.expected
        if not self.custom or self.bounds or self.limit is not None or expected is None:
            return False
        return all(type(value) is expected for value in values)

    def __call__(self, value: Any, path: str, container: Any, key: Any, check: ParameterCheck) -> None:
        """Check ``value``, which is ``container[key]`` at ``path``: ConfigError quoting it as written."""
        allowed = self.allowed
        if not (value in allowed and type(value) is type(allowed[allowed.index(value)])):
            if not self.custom:
                if isinstance(value, dict | list):
                    shown = check.shown(container, key)
                    raise ConfigError(check.source, path, f"nested value {shown} is not allowed; choose from {allowed}")
                raise ConfigError(
                    check.source, path, f"{check.shown(container, key)} is not allowed; choose from {allowed}"
                )
            expected = self.expected if self.expected is not None else type(value)
            numeric = expected is float and isinstance(value, int) and not isinstance(value, bool)
            if not (isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool) or numeric):
                kind = TYPE_NAMES.get(expected, expected.__name__)
                shown = check.shown(container, key)
                raise ConfigError(check.source, path, f"{shown} is not {kind}; give {kind} or one of {allowed}")
        if self.bounds and isinstance(value, int | float) and not isinstance(value, bool):
            low, high = self.low, self.high
            if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
                raise ConfigError(check.source, path, f"{check.shown(container, key)} is out of range: {self.bounds}")
        if self.limit is not None and isinstance(value, int | float) and value > self.limit:
            check.warn(path, f"{check.shown(container, key)} is above {self.limit}: {self.note}")


def range_text(option: dict[str, Any]) -> str | None:
    """The allowed range of an option in words (``from 0 to 1``, ``at least 1``), or None without one."""
    low, high = option.get("min"), option.get("max")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return None
