"""results.json after a collect: the changed stacks' lines spliced into the file in stack order,
the same file a rebuild from every record gives (and a file that is not ours is rebuilt)."""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path

import pytest
from test_async_engine import _results
from test_index_trust import _finish_all, _submitted
from toy_modules import fail_job, finish_job

import quark_cli.results_file as results_file
from quark_cli.results_file import RESULTS_FILE, _results_bytes, _splice, _splice_plan, _stack_order, result_line
from quark_cli.schema import parse_trusted
from quark_cli.state import RunDir


def _record(item: int, repetition: int, value: int) -> dict:
    key = f"{item:03d}-r{repetition}"
    # a module field named "stack" comes first in the line: the record's own is the last one
    module = {"module_name": "App", "stack": "999-r9", "value": value}
    return {"benchmark_backlog_item_number": item, "repetition": repetition, "module": module, "stack": key}


def _expected(records: dict[str, dict]) -> bytes:
    return _results_bytes([result_line(records[key]) for key in sorted(records, key=_stack_order)])


def _spliced(path, new: dict[str, bytes]) -> bytes | None:
    """The file at ``path`` as ``_splice_plan`` would write it, or None."""
    raw = path.read_bytes()
    plan = _splice_plan(raw, new)
    return None if plan is None else b"".join(raw[part] if isinstance(part, slice) else part for part in plan)


@pytest.mark.parametrize("seed", range(24))
def test_spliced_lines_give_the_file_a_rebuild_gives(tmp_path, seed):
    """A few stacks changed, or (odd seeds) most of them: neighbours found without a search."""
    chance = random.Random(seed)
    keys = [(item, repetition) for item in range(chance.randint(1, 40)) for repetition in (1, 2, 10)]
    before = {f"{i:03d}-r{r}": _record(i, r, 0) for i, r in chance.sample(keys, chance.randint(1, len(keys)))}
    path = tmp_path / "results.json"
    path.write_bytes(_expected(before))
    new = {}
    changes = chance.randint(1, 8) if seed % 2 == 0 else chance.randint(len(keys) // 2, len(keys) + 2)
    for item, repetition in chance.sample(keys + [(500, 1), (0, 0)], changes):
        record = _record(item, repetition, chance.randint(1, 99))
        new[record["stack"]] = result_line(record)
    after = {**before, **{key: json.loads(line) for key, line in new.items()}}
    spliced = _spliced(path, new)
    assert spliced == _expected(after)
    json.loads(spliced)


@pytest.mark.parametrize("text", ["[]\n", "[\n{}\n]\n", '[\n{"stack": "x"}\n]\n', "not json"])
def test_a_file_that_is_not_ours_is_not_spliced(tmp_path, text):
    path = tmp_path / "results.json"
    path.write_text(text)
    assert _spliced(path, {"000-r1": result_line(_record(0, 1, 1))}) is None


@pytest.mark.parametrize("refused", [None, "copy_file_range", "mmap"])
def test_a_spliced_file_copies_its_unchanged_spans_file_to_file(tmp_path, monkeypatch, refused):
    """Long unchanged spans go file to file; where the file system refuses that, by reads and writes;
    where it cannot map the old file, from the file read whole."""
    monkeypatch.setattr(results_file, "KERNEL_COPY_BYTES", 1)  # every span, however short

    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV if refused == "copy_file_range" else errno.ENODEV, f"no {refused}")

    if refused == "copy_file_range":
        monkeypatch.setattr(os, "copy_file_range", refuse)
    elif refused == "mmap":
        monkeypatch.setattr(results_file.mmap, "mmap", refuse)
    records = {f"{item:03d}-r1": _record(item, 1, item) for item in range(0, 40, 2)}
    path = tmp_path / "results.json"
    path.write_bytes(_expected(records))
    changed = {**{f"{i:03d}-r1": _record(i, 1, -i) for i in (0, 7, 38, 41)}}
    assert _splice(path, {key: result_line(record) for key, record in changed.items()})
    assert path.read_bytes() == _expected({**records, **changed})


@pytest.mark.parametrize("text", ["", "[]\n", '[\n{"stack": "x"}\n]\n'])
def test_a_file_that_is_not_ours_is_left_as_it_was(tmp_path, text):
    path = tmp_path / "results.json"
    path.write_text(text)
    assert not _splice(path, {"000-r1": result_line(_record(0, 1, 1))})
    assert path.read_text() == text


def _records_in_order(run) -> list[dict]:
    """Every record file of the run, as results.json must hold them: by backlog item, then repetition."""
    records = RunDir(run).read_records()
    return [records[key] for key in sorted(records, key=_stack_order)]


def _reversed(text: bytes) -> bytes:
    return _results_bytes(text[2:-3].split(b",\n")[::-1])


def _first_dropped(text: bytes) -> bytes:
    return _results_bytes(text[2:-3].split(b",\n")[1:])


def _status_changed(text: bytes) -> bytes:
    changed = text.replace(b'"quark_job_status":"INTERRUPTED"', b'"quark_job_status":"FAILED"', 1)
    assert changed != text
    return changed


@pytest.mark.parametrize("edit", [_reversed, _first_dropped, lambda text: b"[]\n", _status_changed])
def test_results_edited_by_hand_are_rebuilt_from_the_records(quark, write_config, tmp_path, edit):
    """A results.json that is not as quark wrote it is never spliced into nor kept: the next collect
    writes it from the records, whether it changes a stack (the second) or not (the first)."""
    run = _submitted(quark, write_config, tmp_path / "run")
    path = run / RESULTS_FILE
    path.write_bytes(edit(path.read_bytes()))
    assert quark("collect", run).exit_code == 3  # nothing done yet
    assert _results(run) == _records_in_order(run)
    path.write_bytes(edit(path.read_bytes()))
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert _results(run) == _records_in_order(run)
    assert [record["quark_job_status"] for record in _results(run)] == ["FINISHED"] * 4


def test_records_written_by_a_killed_command_reach_results(quark, write_config, tmp_path):
    """A command killed between its records and results.json leaves the change mark: the next
    collect writes results.json from every record, though none of its stacks changes then."""
    run = _submitted(quark, write_config, tmp_path / "run")
    record_file = sorted((run / "records").glob("*.json"))[0]
    record = json.loads(record_file.read_text())
    record["timestamp"] = "2026-11-30T00:00:00.000+00:00"  # what the killed command wrote
    record_file.write_text(json.dumps(record))
    (run / ".changing").touch()
    assert quark("collect", run).exit_code == 3
    assert _results(run) == _records_in_order(run)
    assert _results(run)[0]["timestamp"] == "2026-11-30T00:00:00.000+00:00"


def test_a_collect_splices_what_a_rebuild_writes(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    spliced = (run / RESULTS_FILE).read_bytes()
    RunDir(run).rebuild_results()
    assert spliced == (run / RESULTS_FILE).read_bytes()


def test_each_line_is_found_by_its_record_s_own_stack(tmp_path):
    """A module's field named ``stack`` (``999-r9`` in every line here) does not place the line."""
    records = {f"{item:03d}-r1": _record(item, 1, item) for item in range(3)}
    path = tmp_path / "results.json"
    path.write_bytes(_expected(records))
    new = _record(1, 1, 42)
    assert _spliced(path, {"001-r1": result_line(new)}) == _expected({**records, "001-r1": new})


def test_spaced_lines_of_an_earlier_quark_cli_are_found_beside_compact_ones(tmp_path):
    """Lines were spaced (``", "``, ``": "``) before 2026-11-30: compact ones are spliced among
    them, each in its stack's place, and both are found again."""
    records = {f"{item:03d}-r1": _record(item, 1, item) for item in range(4)}
    spaced = [json.dumps(records[key], separators=(", ", ": ")).encode() for key in sorted(records)]
    path = tmp_path / "results.json"
    path.write_bytes(_results_bytes(spaced))
    new = {"002-r1": _record(2, 1, 42), "004-r1": _record(4, 1, 44)}
    spliced = _spliced(path, {key: result_line(record) for key, record in new.items()})
    assert json.loads(spliced) == [
        records["000-r1"],
        records["001-r1"],
        new["002-r1"],
        records["003-r1"],
        new["004-r1"],
    ]
    path.write_bytes(spliced)
    moved = _record(1, 1, 41)
    assert json.loads(_spliced(path, {"001-r1": result_line(moved)}))[1] == moved


def test_a_missing_results_file_is_written_again_without_a_stamp_to_compare(quark, write_config, tmp_path):
    """results.json deleted in a run whose digests hold no stamp of it (an earlier quark-cli's): a
    missing file and an unknown stamp are not "as quark wrote it"."""
    run = _submitted(quark, write_config, tmp_path / "run")
    digests = json.loads((run / "index.sha256").read_text())
    del digests["results"]
    (run / "index.sha256").write_text(json.dumps(digests))
    (run / RESULTS_FILE).unlink()
    assert quark("collect", run).exit_code == 3
    assert _results(run) == _records_in_order(run)


def _read_from_results_as_from_files(run) -> None:
    """Every stack's record, as collect reads it from results.json, is the one its file holds."""
    keys = RunDir(run).record_keys()
    saved = RunDir(run).saved_records(keys)
    assert saved.keys() == keys, "results.json trusted, every stack's line found"
    assert saved == {key: RunDir(run).read_record(key) for key in keys}


def test_records_read_from_results_are_those_their_files_hold_after_every_command(quark, write_config, tmp_path):
    """While results.json is as quark wrote it, collect reads the records it needs from it, one file
    instead of one a stack: after every command each line holds what its record's file holds."""
    run = _submitted(quark, write_config, tmp_path / "run")
    _read_from_results_as_from_files(run)
    jobs = [path.with_suffix("") for path in sorted(run.glob("jobs/*.json"))]
    finish_job(jobs[0])
    fail_job(jobs[1])
    assert quark("collect", run).exit_code == 1  # a job failed, two wait
    _read_from_results_as_from_files(run)
    assert [record["quark_job_status"] for record in _results(run)] == [
        "FINISHED",
        "FAILED",
        "INTERRUPTED",
        "INTERRUPTED",
    ]
    _finish_all(run)
    assert quark("collect", run).exit_code == 1
    _read_from_results_as_from_files(run)
    assert quark("collect", run, "--retry-failed").exit_code == 0
    _read_from_results_as_from_files(run)
    assert [record["quark_job_status"] for record in _results(run)] == ["FINISHED"] * 4


def test_a_record_edited_by_hand_reaches_results_and_is_read_as_edited_after(quark, write_config, tmp_path):
    """A record edited by hand (still valid) while its stack waits: the next collect, which reads it
    from its file, puts it into results.json too. Its new index makes the file look unedited, and
    the collects after it read records from results.json: they read the edit."""
    run = _submitted(quark, write_config, tmp_path / "run")
    record_file = run / "records" / "000-r1.json"
    record = json.loads(record_file.read_text())
    record["note"] = "edited by hand"
    record_file.write_text(json.dumps(record))
    jobs = [path.with_suffix("") for path in sorted(run.glob("jobs/*.json"))]
    finish_job(jobs[-1])  # another stack's job: the collect has something to write
    assert quark("collect", run).exit_code == 3
    assert _results(run)[0]["note"] == "edited by hand"
    _read_from_results_as_from_files(run)
    finish_job(jobs[-2])
    assert quark("collect", run).exit_code == 3
    _read_from_results_as_from_files(run)
    assert RunDir(run).saved_records({"000-r1"})["000-r1"]["note"] == "edited by hand"


@pytest.mark.parametrize("change", ["results edited", "command killed", "record edited"])
def test_records_are_read_from_their_files_when_results_may_differ(quark, write_config, tmp_path, change):
    """results.json edited by hand, or a command killed before it: the records come from their files
    (``saved_records`` answers none); a record edited by hand after the index is not answered."""
    run = _submitted(quark, write_config, tmp_path / "run")
    keys = RunDir(run).record_keys()
    if change == "results edited":
        path = run / RESULTS_FILE
        path.write_bytes(path.read_bytes())  # the same content, but not the file quark wrote
    elif change == "command killed":
        (run / ".changing").touch()
    else:
        record_file = run / "records" / "000-r1.json"
        record = json.loads(record_file.read_text())
        record["jobs"] = ["000-r1-ghost-pre"]  # a job without a file: collecting it would submit it again
        record_file.write_text(json.dumps(record))
        refused = quark("collect", run)
        assert refused.exit_code == 2 and str(record_file) in refused.stderr, refused.stderr
        return
    assert RunDir(run).saved_records(keys) == {}
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert [record["quark_job_status"] for record in _results(run)] == ["FINISHED"] * 4


@pytest.mark.parametrize("number", [2**63 - 1, 2**64 + 1, -(2**70), 10**30, 0.1, 1e300])
def test_a_record_read_from_results_keeps_every_number_exactly(number):
    """Lines are parsed by orjson where it reads the same, never where it would turn an integer
    past 64 bits into a float."""
    record = {"schema_version": 1, "stack": "000-r1", "quark_job_status": "FINISHED"}
    record.update(benchmark_backlog_item_number=0, repetition=1, module={"value": number, "values": [number]})
    read = parse_trusted(Path("records/000-r1.json"), result_line(record), "record")
    assert read == record and type(read["module"]["value"]) is type(number)
