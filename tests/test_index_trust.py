"""The index is trusted only as its own command left it: copied in, edited, or beside edited files, it
is not, and status and collect read the files instead (found by a new user trying to break it)."""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
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
    for name in ("index.json", "open_jobs.json", "open_job_summaries.json", "index_changes.json"):
        if (later / name).exists():
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


def test_files_edited_by_hand_stay_as_edited_after_the_next_collect(quark, write_config, tmp_path, edit_scan_where):
    run = _submitted(quark, write_config, tmp_path / "run")
    first_job = sorted(run.glob("jobs/*.json"))[0]
    job = json.loads(first_job.read_text())
    _edit_keeping_times(first_job, json.dumps({**job, "info": {**job["info"], "note": "by hand"}, "attempt": 7}))
    record = run / "records" / "001-r1.json"
    _edit_keeping_times(
        record, json.dumps({**json.loads(record.read_text()), "quark_job_status": "FAILED", "error": "E"})
    )
    for command in ("collect", "status"):  # the collect writes the index anew: it must take the edits in
        quark(command, run)
        shown = json.loads(quark("status", run, "--json").stdout)
        stacks = {s["stack"]: (s["status"], s["error"]) for s in shown["stacks"]}
        jobs = {j["key"]: j for j in shown["jobs"]}
        assert stacks["001-r1"] == ("FAILED", "E"), command
        assert jobs[job["key"]]["attempt"] == 7, command
    assert json.loads(first_job.read_text())["info"]["note"] == "by hand"


def test_a_job_file_edited_by_hand_stays_as_edited_after_a_cancel_of_another_job(quark, write_config, tmp_path):
    run = _submitted(quark, write_config, tmp_path / "run")
    edited, *_, other = sorted(run.glob("jobs/*.json"))
    job = json.loads(edited.read_text())
    _edit_keeping_times(edited, json.dumps({**job, "attempt": 7}))
    assert quark("cancel", run, other.stem, "--forget").exit_code == 0
    jobs = {j["key"]: j for j in json.loads(quark("status", run, "--json").stdout)["jobs"]}
    assert (jobs[job["key"]]["attempt"], jobs[other.stem]["status"]) == (7, "CANCELLED")


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


@pytest.fixture(params=["in this process", "in one process of its own", "in a process for each folder"])
def edit_scan_where(request, monkeypatch):
    """The hand-edit scan done here, or (as on a run of over 3,000 stacks) beside the command: in one
    process on two cores, in one for the records and one for the job files on more."""
    if request.param != "in this process":
        monkeypatch.setattr("quark_cli.index_edits.SCAN_APART_BYTES", 0)
        cores = 2 if request.param == "in one process of its own" else 4
        monkeypatch.setattr("quark_cli.index_edits._cores", lambda: cores)
    return request.param


def test_files_edited_or_deleted_by_hand_are_seen_wherever_the_scan_runs(
    quark, write_config, tmp_path, edit_scan_where
):
    run = _submitted(quark, write_config, tmp_path / "run")
    jobs = sorted(run.glob("jobs/*.json"))
    job = json.loads(jobs[0].read_text())
    job["info"]["id"] = "restored-id"
    _edit_keeping_times(jobs[0], json.dumps(job))
    first = run / "records" / "000-r1.json"
    _edit_keeping_times(
        first, json.dumps({**json.loads(first.read_text()), "quark_job_status": "FAILED", "error": "E"})
    )
    shown = json.loads(quark("status", run, "--json").stdout)
    assert {j["key"]: j["id"] for j in shown["jobs"]}[job["key"]] == "restored-id"
    assert {s["stack"]: (s["status"], s["error"]) for s in shown["stacks"]}["000-r1"] == ("FAILED", "E")
    assert shown["stack_totals"]["FAILED"] == 1

    record = run / "records" / "001-r1.json"
    _edit_keeping_times(record, record.read_text()[:20])
    refused = quark("collect", run)
    assert refused.exit_code == 2 and str(record) in refused.stderr, refused.stderr
    record.unlink()
    jobs[-1].unlink()
    refused = quark("status", run)
    assert refused.stderr.startswith(f"warning: {jobs[-1]}: missing, yet"), refused.stderr


def test_the_edit_scan_script_answers_as_the_scan_in_this_process(tmp_path):
    """Run as the command runs it (no site-packages), with names no text encoding holds."""
    import subprocess
    import sys

    from quark_cli import edit_scan

    records, jobs = tmp_path / "records", tmp_path / "jobs"
    records.mkdir()
    jobs.mkdir()
    for name in ("000-r1.json", ".000-r1.json.tmp", "note.txt"):
        (records / name).write_text("{}")
    for name in ("000-r1-A-pre.json", "001-r1-A-pre.json", "line\nbreak.json", "000-r1-A-pre"):
        (jobs / name).write_text("{}")
    odd = os.fsencode(str(jobs)) + b"/\xff-odd.json"
    with open(odd, "w") as file:
        file.write("{}")
    after = os.stat(records / "000-r1.json").st_ctime_ns - 1
    (records / "older.json").write_text("{}")
    os.utime(records / "older.json", ns=(0, 0))  # the change time still moves: it is seen

    done = subprocess.run(
        [sys.executable, "-I", "-S", edit_scan.__file__, str(records), str(jobs), str(after), "-1"],
        capture_output=True,
        check=True,
    )
    answer = edit_scan.decode(done.stdout)
    here = edit_scan.scan(str(records), str(jobs), after)
    assert [sorted(part) for part in answer] == [sorted(part) for part in here]
    assert sorted(answer[0]) == ["000-r1.json", "older.json"]
    assert sorted(answer[1]) == sorted(
        ["000-r1-A-pre.json", "001-r1-A-pre.json", "line\nbreak.json", os.fsdecode(b"\xff-odd.json")]
    )
    assert sorted(answer[2]) == sorted(answer[1])

    # the folder's time as a command saw every job file: none is listed while it stays so
    listed = os.stat(jobs).st_ctime_ns
    later = time_ns_after(tmp_path)
    assert edit_scan.scan(str(records), str(jobs), later, listed) == ([], None, [])
    assert edit_scan.decode(edit_scan.encode(([], None, []))) == ([], None, [])
    time.sleep(1.1 if listed % 1_000_000_000 == 0 else 0.05)  # the file system's clock moves every few ms, or second
    (jobs / "001-r1-A-pre.json").unlink()
    (jobs / "000-r1-A-pre.json").write_text("{ }")
    done = subprocess.run(
        [sys.executable, "-I", "-S", edit_scan.__file__, str(records), str(jobs), str(later), str(listed)],
        capture_output=True,
        check=True,
    )
    records_changed, job_files, jobs_changed = edit_scan.decode(done.stdout)
    assert records_changed == [] and jobs_changed == ["000-r1-A-pre.json"]
    assert sorted(job_files) == sorted(["000-r1-A-pre.json", "line\nbreak.json", os.fsdecode(b"\xff-odd.json")])


def test_a_job_file_deleted_while_a_collect_runs_is_seen_by_the_next_command(
    quark, write_config, tmp_path, edit_scan_where
):
    """Deleted after the collect's own scan and before its index: the folder's time then predates
    the index, yet the next command lists the job files (the collect did not see them all)."""
    from quark_cli.engine import BenchmarkManager
    from quark_cli.runs import load_run_config
    from quark_cli.state import RunDir

    run = _submitted(quark, write_config, tmp_path / "run")
    assert quark("status", run).exit_code == 3  # every later command finds the folder as the last one saw it
    jobs = sorted(run.glob("jobs/*.json"))
    finish_job(jobs[0].with_suffix(""))  # the collect has something to write: a new index
    opened = RunDir.open(run)
    with opened.lock(0):
        manager = BenchmarkManager(opened, load_run_config(opened))
        manager.check()
        jobs[-1].unlink()  # by hand, while the collect polls
        manager.collect()
    shown = quark("status", run)
    assert shown.stderr.startswith(f"warning: {jobs[-1]}: missing, yet"), shown.stderr
    refused = quark("collect", run)
    assert refused.exit_code == 2 and str(jobs[-1]) in refused.stderr, refused.stderr


def time_ns_after(folder: Path) -> int:
    """A change time later than every file's under ``folder``."""
    return max(path.stat().st_ctime_ns for path in folder.rglob("*")) + 1


def _job_statuses(quark, run: Path) -> dict[str, str]:
    return {job["key"]: job["status"] for job in json.loads(quark("status", run, "--json").stdout)["jobs"]}


def test_a_collect_that_changed_little_writes_the_changes_and_every_reader_sees_them(
    quark, write_config, tmp_path, monkeypatch
):
    run = _submitted(quark, write_config, tmp_path / "run")
    whole = {name: (run / name).read_bytes() for name in ("index.json", "open_jobs.json", "open_job_summaries.json")}
    first = sorted(run.glob("jobs/*.json"))[0]
    finish_job(first.with_suffix(""))
    assert quark("collect", run).exit_code == 3

    assert {name: (run / name).read_bytes() for name in whole} == whole, "only the changes were written"
    changes = json.loads((run / "index_changes.json").read_text())
    assert changes["stacks"] == {"000-r1": "FINISHED"}
    assert list(changes["jobs"]) == [first.stem] and changes["open_jobs"] == {first.stem: None}
    assert _statuses(quark, run)["000-r1"] == "FINISHED"
    assert _job_statuses(quark, run)[first.stem] == "DONE"

    monkeypatch.setattr("quark_cli.index_changes.LIMIT", 0)  # the next command writes the whole index again
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert not (run / "index_changes.json").exists()
    assert json.loads((run / "open_jobs.json").read_text())["jobs"] == {}
    assert set(json.loads((run / "index.json").read_text())["final_jobs"]) == set(_jobs_of(run))
    assert set(_statuses(quark, run).values()) == {"FINISHED"}
    assert set(_job_statuses(quark, run).values()) == {"DONE"}


def _jobs_of(run: Path) -> list[str]:
    return [path.stem for path in run.glob("jobs/*.json")]


@pytest.mark.parametrize("damage", ["edited", "deleted"])
def test_changes_edited_or_lost_are_not_trusted(quark, write_config, tmp_path, damage):
    run = _submitted(quark, write_config, tmp_path / "run")
    finish_job(sorted(run.glob("jobs/*.json"))[0].with_suffix(""))
    assert quark("collect", run).exit_code == 3
    path = run / "index_changes.json"
    if damage == "edited":
        changes = json.loads(path.read_text())
        changes["stacks"] = {key: "FINISHED" for key in ("000-r1", "000-r2", "001-r1", "001-r2")}
        path.write_text(json.dumps(changes))
    else:
        path.unlink()
    assert _statuses(quark, run) == {
        "000-r1": "FINISHED",
        "000-r2": "INTERRUPTED",
        "001-r1": "INTERRUPTED",
        "001-r2": "INTERRUPTED",
    }, "the records say so"
    _finish_all(run)
    assert quark("collect", run).exit_code == 0
    assert [r["quark_job_status"] for r in _results(run)] == ["FINISHED"] * 4


@pytest.mark.parametrize("garbage", ["[]", "not json", '{"generation": "x", "jobs": {}}'])
def test_status_makes_the_open_jobs_summaries_when_their_file_is_not_ours(quark, write_config, tmp_path, garbage):
    run = _submitted(quark, write_config, tmp_path / "run")
    expected = _job_statuses(quark, run)
    (run / "open_job_summaries.json").write_text(garbage)
    assert _job_statuses(quark, run) == expected
    assert set(expected.values()) == {"SUBMITTED"} and len(expected) == 4


@pytest.mark.parametrize("restored", ["whole index", "changes"])
def test_index_files_restored_with_their_digests_are_not_trusted(quark, write_config, tmp_path, restored):
    """A backup's index, digests and all, is older than the records: status reads them (found by a helper)."""
    run = _submitted(quark, write_config, tmp_path / "run")
    jobs = sorted(run.glob("jobs/*.json"))
    if restored == "changes":
        finish_job(jobs[0].with_suffix(""))
        assert quark("collect", run).exit_code == 3
    backup = tmp_path / "backup"
    shutil.copytree(run, backup)
    finish_job(jobs[1].with_suffix(""))
    assert quark("collect", run).exit_code == 3
    for name in ("index.json", "open_jobs.json", "open_job_summaries.json", "index_changes.json", "index.sha256"):
        if (backup / name).exists():
            shutil.copy2(backup / name, run / name)

    finished = {"000-r1", "000-r2"} if restored == "changes" else {"000-r2"}
    assert {key for key, status in _statuses(quark, run).items() if status == "FINISHED"} == finished
    assert [_job_statuses(quark, run)[path.stem] for path in jobs[:2]] == (
        ["DONE", "DONE"] if restored == "changes" else ["SUBMITTED", "DONE"]
    )
