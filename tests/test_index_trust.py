"""The index is trusted only as its own command left it: copied in, edited, or beside edited files, it
is not, and status and collect read the files instead (found by a new user trying to break it)."""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path

import pytest
from test_async_engine import TWO_ITEMS_ASYNC, _config, _results
from toy_modules import finish_job

from quark_cli.run_index import _index_value


def _submitted(quark, write_config, run: Path) -> Path:
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).exit_code == 3
    return run


def _finish_all(run: Path) -> None:
    for job_dir in sorted(p.with_suffix("") for p in run.glob("jobs/*.json")):
        finish_job(job_dir)


def _statuses(quark, run: Path) -> dict[str, str]:
    document = json.loads(quark("status", run, "--json").stdout)
    return {stack["stack"]: stack["status"] for stack in document["stacks"]}


@pytest.mark.parametrize("garbage", ["[]", '"text"', "5", "null", "{}", "not json"])
def test_open_jobs_that_are_not_ours_are_not_used(quark, write_config, tmp_path, garbage):
    run = _submitted(quark, write_config, tmp_path / "run")
    (run / "open_jobs.json").write_text(garbage)
    _finish_all(run)
    collected = quark("collect", run)
    assert collected.exit_code == 0, collected.stdout + collected.stderr
    assert [r["quark_job_status"] for r in _results(run)] == ["FINISHED"] * 4


def test_an_index_copied_in_from_a_later_point_is_not_trusted(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    later = tmp_path / "later"
    shutil.copytree(run, later)
    _finish_all(later)
    assert quark("collect", later).exit_code == 0
    for name in ("index.json", "open_jobs.json"):
        shutil.copy2(later / name, run / name)  # not the digest: the index is not the run's own

    assert set(_statuses(quark, run).values()) == {"INTERRUPTED"}, "the records say so, not the copied index"
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert [r["quark_job_status"] for r in _results(run)] == ["FINISHED"] * 4


def test_an_index_edited_by_hand_is_not_trusted(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    index = json.loads((run / "index.json").read_text())
    index["stacks"] = {"000-r1": "FINISHED"}
    (run / "index.json").write_text(json.dumps(index))
    assert set(_statuses(quark, run).values()) == {"INTERRUPTED"}
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert [r["quark_job_status"] for r in _results(run)] == ["FINISHED"] * 4, "no stack is lost"


def _edit_keeping_times(path: Path, text: str) -> None:
    """Change a file as ``cp -p`` or ``touch -r`` would leave it: the old modification time."""
    before = path.stat()
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_job_file_edited_with_its_old_time_is_read(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    path = sorted(run.glob("jobs/*.json"))[0]
    job = json.loads(path.read_text())
    job["info"]["id"] = "restored-id"
    _edit_keeping_times(path, json.dumps(job))
    shown = json.loads(quark("status", run, "--json").stdout)
    assert {j["key"]: j["id"] for j in shown["jobs"]}[job["key"]] == "restored-id"


def test_a_truncated_job_file_with_its_old_time_is_refused(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    path = sorted(run.glob("jobs/*.json"))[0]
    _edit_keeping_times(path, path.read_text()[:30])
    for command in ("status", "collect"):
        result = quark(command, run)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert str(path) in result.stderr
    assert len(path.read_text()) == 30, "a refused command changes nothing"


@pytest.mark.parametrize("content", [b'{"jobs": {}}', b"not json", b'{"bad": "\\ud800"}'])
def test_reading_an_index_leaves_the_garbage_collector_as_it_found_it(content):
    """Paused while orjson parses, back on after, whatever the file held (and still off if it was)."""
    for enabled in (True, False):
        if enabled:
            gc.enable()
        else:
            gc.disable()
        try:
            _index_value(content)
        except ValueError:
            pass
        assert gc.isenabled() is enabled
    gc.enable()
