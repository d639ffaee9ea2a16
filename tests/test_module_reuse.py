"""Modules that allow it (``Core.reusable``) are built once per command, not once per stack, and
give each stack the record a new instance would (``quark_cli.module_cache``)."""

from __future__ import annotations

import pytest
from test_async_engine import _config, _results
from test_index_trust import _finish_all
from toy_modules import BUILT

REUSABLE = """
application:
  module: toy_modules:ReusableNumbers
  config: {start: [1, 2, 3], count: [2, 3], fail: [FAIL]}
  submodules:
    - name: LEAF
      config: {auto_finish: [AUTO]}
repetitions: 2
"""


def _reusable(write_config, leaf: str = "ReusableSquare", fail: str = "false", auto: bool = False):
    return _config(write_config, REUSABLE.replace("LEAF", leaf).replace("FAIL", fail), auto)


def _values(run) -> list[tuple[int, list[int], int]]:
    """Each stack's (total, values, squared) as its record has them."""
    return [(r["module"]["total"], r["module"]["values"], r["module"]["submodule"]["squared"]) for r in _results(run)]


def _expected() -> list[tuple[int, list[int], int]]:
    stacks = [[x * x for x in range(start, start + count)] for start in (1, 2, 3) for count in (2, 3) for _ in (1, 2)]
    return [(sum(squares), squares, len(squares)) for squares in stacks]


def test_a_collect_builds_a_reusable_stack_once_and_each_record_is_its_own(quark, write_config, tmp_path):
    run = tmp_path / "run"
    BUILT.clear()
    assert quark("submit", _reusable(write_config), "-o", run).exit_code == 3
    # the check's, the first stack's; the other 11 stacks are walked at the same time, each with its own
    assert BUILT.count("ReusableNumbers") == 1 + 1 + 11
    _finish_all(run)
    BUILT.clear()
    collected = quark("collect", run)
    assert collected.exit_code == 0, collected.stdout + collected.stderr
    # the config's check builds each module once to list its parameters; the 12 walks, once more
    assert BUILT == ["ReusableNumbers", "ReusableSquare"] * 2
    assert _values(run) == _expected()


def test_a_stack_with_a_module_that_does_not_allow_it_is_built_each_time(quark, write_config, tmp_path):
    BUILT.clear()
    assert quark("run", _reusable(write_config, leaf="AsyncSquare", auto=True), "-o", tmp_path / "run").exit_code == 0
    assert BUILT == ["ReusableNumbers"] * (1 + 12), "the check's, then one a stack: AsyncSquare is not reusable"
    assert _values(tmp_path / "run") == _expected()


@pytest.mark.parametrize(
    "fail, code, status, error",
    [("true", 1, "FAILED", "asked to fail"), ("transient", 3, "INTERRUPTED", "service unavailable")],
)
def test_after_a_stack_whose_module_raised_its_modules_are_built_again(
    quark, write_config, tmp_path, fail, code, status, error
):
    """Items alternate fail false / FAIL: each stack whose module raised (failed, or left
    INTERRUPTED by a service that was down) leaves state in the module, which the next stack must
    not inherit (it would fail with "kept ...")."""
    BUILT.clear()
    done = quark("run", _reusable(write_config, fail=f"false, {fail}", auto=True), "-o", tmp_path / "run")
    assert done.exit_code == code
    records = _results(tmp_path / "run")
    assert [r["quark_job_status"] for r in records] == ["FINISHED", "FINISHED", status, status] * 6
    # the check's, the first walk's, then one after each stack that raised but the last (none follows it)
    assert BUILT.count("ReusableNumbers") == 1 + 1 + 11
    assert all(error in r["error"] for r in records if r["error"])
