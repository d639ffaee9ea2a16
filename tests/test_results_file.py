"""results.json after a collect: the changed stacks' lines spliced into the file in stack order,
the same file a rebuild from every record gives (and a file that is not ours is rebuilt)."""

from __future__ import annotations

import json
import random
import time

import pytest
from test_async_engine import _results
from test_index_trust import _finish_all, _submitted

from quark_cli.results_file import RESULTS_FILE, _result_lines, _results_bytes, _spliced, _stack_order, result_line
from quark_cli.state import RunDir


def _record(item: int, repetition: int, value: int) -> dict:
    key = f"{item:03d}-r{repetition}"
    # a module field named "stack" comes first in the line: the record's own is the last one
    module = {"module_name": "App", "stack": "999-r9", "value": value}
    return {"benchmark_backlog_item_number": item, "repetition": repetition, "module": module, "stack": key}


def _expected(records: dict[str, dict]) -> bytes:
    return _results_bytes([result_line(records[key]) for key in sorted(records, key=_stack_order)])


@pytest.mark.parametrize("seed", range(12))
def test_spliced_lines_give_the_file_a_rebuild_gives(tmp_path, seed):
    chance = random.Random(seed)
    keys = [(item, repetition) for item in range(chance.randint(1, 40)) for repetition in (1, 2, 10)]
    before = {f"{i:03d}-r{r}": _record(i, r, 0) for i, r in chance.sample(keys, chance.randint(1, len(keys)))}
    path = tmp_path / "results.json"
    path.write_bytes(_expected(before))
    new = {}
    for item, repetition in chance.sample(keys + [(500, 1), (0, 0)], chance.randint(1, 8)):
        record = _record(item, repetition, chance.randint(1, 99))
        new[record["stack"]] = result_line(record)
    after = {**before, **{key: json.loads(line) for key, line in new.items()}}
    spliced = b"".join(_spliced(path, new))
    assert spliced == _expected(after)
    json.loads(spliced)


@pytest.mark.parametrize("text", ["[]\n", "[\n{}\n]\n", '[\n{"stack": "x"}\n]\n', "not json"])
def test_a_file_that_is_not_ours_is_not_spliced(tmp_path, text):
    path = tmp_path / "results.json"
    path.write_text(text)
    assert _spliced(path, {"000-r1": result_line(_record(0, 1, 1))}) is None


def test_results_reordered_by_hand_are_rebuilt_in_order(quark, write_config, tmp_path):
    """A results.json changed after the index (its lines reversed) is not searched as sorted: the
    collect after it writes every stack once, in order."""
    run = _submitted(quark, write_config, tmp_path / "run")
    path = run / RESULTS_FILE
    time.sleep(0.05)  # a change time later than the index's, past the clock's tick of a few ms
    lines = path.read_bytes()[2:-3].split(b",\n")
    path.write_bytes(_results_bytes(lines[::-1]))
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    stacks = [record["stack"] for record in _results(run)]
    assert stacks == sorted(RunDir(run).record_keys(), key=_stack_order)
    assert [record["quark_job_status"] for record in _results(run)] == ["FINISHED"] * 4


def test_a_collect_splices_what_a_rebuild_writes(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    spliced = (run / RESULTS_FILE).read_bytes()
    RunDir(run).rebuild_results()
    assert spliced == (run / RESULTS_FILE).read_bytes()


def test_each_line_is_kept_under_its_record_s_own_stack(tmp_path):
    """A module's field named ``stack`` (``999-r9`` in every line here) does not name the line."""
    records = {f"{item:03d}-r1": _record(item, 1, item) for item in range(3)}
    path = tmp_path / "results.json"
    path.write_bytes(_expected(records))
    assert {key: json.loads(line) for key, line in _result_lines(path).items()} == records
