"""Property: any config the built-in modules accept, written as YAML text, reads back as the same values.

Configs are generated from the modules' own parameter options (listed values, or custom values of
the default's type within ``min``/``max``; text of any kind, including ``010``, ``yes``, ``1e3``,
``10:00``, ``null`` or ``~``), written with ``dump_config`` and read by ``load_config``: every
level of every backlog item holds exactly the generated values, and YAML 1.1 readers (PyYAML's
``safe_load``, what QUARK 2 uses) read the same text as the same data.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quark_cli.config import MAX_BACKLOG, load_config
from quark_cli.config_yaml import dump_config
from quark_cli.modules import load_class

#: Every built-in stack shape: application, the module below it, and a device.
CHAINS = [
    (app, middle, device)
    for app, middle in (("GHZ", "GHZCircuit"), ("MaxCut", "QAOA"))
    for device in ("Sampler", "LocalAsyncSampler", "QaptivaSampler", "SlurmSampler", "IBMSampler")
]
#: Text of every kind YAML might take for something else.
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    st.sampled_from(["010", "yes", "no", "on", "off", "1e3", "10:00", "null", "~", "", "0x1F", "0o17", "true", "<<"]),
)


def _custom(option: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the default's type within the option's range."""
    default = option["default"]
    low, high = option.get("min"), option.get("max")
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=low, max_value=high if high is not None else 10**30)
    if isinstance(default, float):
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if isinstance(default, list):
        return st.lists(TEXT, max_size=3)
    return TEXT


def _values(option: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    listed = st.sampled_from(option["values"])
    one = st.one_of(listed, _custom(option)) if option.get("custom_input") else listed
    return st.lists(one, min_size=1, max_size=3)


def _level(name: str) -> st.SearchStrategy[dict[str, list[Any]]]:
    options = load_class(name)().get_parameter_options()
    return st.fixed_dictionaries({}, optional={key: _values(option) for key, option in options.items()})


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    app, middle, device = draw(st.sampled_from(CHAINS))
    return {
        "application": {
            "name": app,
            "config": draw(_level(app)),
            "submodules": [
                {
                    "name": middle,
                    "config": draw(_level(middle)),
                    "submodules": [{"name": device, "config": draw(_level(device))}],
                }
            ],
        },
        "repetitions": draw(st.integers(1, 10_000)),
    }


def _backlog_size(config: dict[str, Any]) -> int:
    """How many backlog items the config expands to (the loader refuses more than MAX_BACKLOG)."""
    size, level = 1, config["application"]
    while level:
        for listed in level["config"].values():
            size *= len(listed)
        level = level.get("submodules", [None])[0]
    return size


def _same(left: Any, right: Any) -> bool:
    """Equal, with types: 1 and 1.0 and True are three different things a config can say."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    if isinstance(left, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


@settings(
    max_examples=500, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=configs())
def test_a_config_written_as_yaml_reads_back_as_the_same_values(tmp_path, config):
    assume(_backlog_size(config) <= MAX_BACKLOG)
    text = dump_config(config)
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")

    loaded = load_config(path)
    assert _same(loaded.raw, config), text
    levels = [config["application"], config["application"]["submodules"][0]]
    levels.append(levels[1]["submodules"][0])
    given_values = [level["config"] for level in levels]
    for item in loaded.backlog:
        for level, values in zip(item.levels, given_values, strict=True):
            for name, listed in values.items():
                assert any(_same(level.config[name], value) for value in listed), (name, text)
    assert _same(yaml.safe_load(text), config), f"YAML 1.1 reads it otherwise:\n{text}"
