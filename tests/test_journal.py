"""The write-ahead journal of records and job files (``quark_cli.journal``): what a kill leaves in it
is finished by the next command, read meanwhile by readers, and refused when it is not ours."""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_async_engine import TWO_ITEMS_ASYNC, _config
from toy_modules import finish_job

from quark_cli.group_commit import GroupCommit, group_commit, staged_write
from quark_cli.journal import JOURNAL_DIR, PAGE, Journal, in_place


def _submitted(quark, write_config, run: Path) -> Path:
    assert quark("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).exit_code == 3
    return run


def _statuses(quark, run: Path) -> tuple[int, dict[str, str]]:
    result = quark("status", run, "--json")
    return result.exit_code, {stack["stack"]: stack["status"] for stack in json.loads(result.stdout)["stacks"]}


def _journal_of_a_killed_collect(quark, write_config, tmp_path: Path) -> tuple[Path, Path]:
    """A submitted run whose jobs still wait, with the segment a collect killed after writing it (and
    before rewriting a file) would leave: stack 000-r1 finished, taken from a copy that was collected."""
    run = _submitted(quark, write_config, tmp_path / "run")
    collected = tmp_path / "collected"
    shutil.copytree(run, collected)
    for job_dir in sorted(p.with_suffix("") for p in collected.glob("jobs/000-r1-*.json")):
        finish_job(job_dir)
    assert quark("collect", collected).exit_code == 3
    jobs = [p.relative_to(collected) for p in collected.glob("jobs/000-r1-*.json")]
    files = [Path("records/000-r1.json"), *jobs]
    writes = [{"path": path.as_posix(), "content": (collected / path).read_text()} for path in files]
    (run / JOURNAL_DIR).mkdir(exist_ok=True)
    (run / JOURNAL_DIR / "00000001.json").write_text(json.dumps({"schema_version": 1, "writes": writes}))
    return run, collected


def test_the_next_command_finishes_what_a_killed_collect_journaled(quark, write_config, tmp_path):
    run, collected = _journal_of_a_killed_collect(quark, write_config, tmp_path)
    assert _statuses(quark, run)[1]["000-r1"] == "INTERRUPTED"  # its file is whole, and still the old one

    assert quark("collect", run).exit_code == 3  # the other stacks' jobs still wait
    waiting = {"000-r2": "INTERRUPTED", "001-r1": "INTERRUPTED", "001-r2": "INTERRUPTED"}
    assert _statuses(quark, run)[1] == {"000-r1": "FINISHED", **waiting}
    record = "records/000-r1.json"
    assert json.loads((run / record).read_text()) == json.loads((collected / record).read_text())
    assert _segments_left(run) == []


def test_a_record_torn_by_a_power_cut_is_read_from_the_journal(quark, write_config, tmp_path):
    run, _ = _journal_of_a_killed_collect(quark, write_config, tmp_path)
    record = run / "records/000-r1.json"
    record.write_bytes(record.read_bytes()[: len(record.read_bytes()) // 2])  # half of a rewrite reached the disk

    code, statuses = _statuses(quark, run)
    assert code == 3 and statuses["000-r1"] == "FINISHED"
    assert quark("collect", run).exit_code == 3
    assert json.loads(record.read_text())["quark_job_status"] == "FINISHED"

    (run / "records/000-r2.json").write_text('{"schema_version": 1, "stack": "000-r2", "quark_')  # no journal for it
    damaged = quark("status", run)
    assert damaged.exit_code == 2 and f"{run}/records/000-r2.json: damaged JSON" in damaged.stderr


@pytest.mark.parametrize(
    "path, content, message",
    [
        ("../outside.json", "{}", "{segment}: damaged journal segment (ValueError); restore it or remove the run"),
        ("records/a\u0000.json", "{}", "{segment}: damaged journal segment (ValueError); restore it or remove the run"),
        ("records/000-r1.json", "garbage", "{run}/records/000-r1.json: damaged JSON at line 1 column 1; restore it"),
        ("jobs/ghost/job_info.json", "JOB", "{run}/jobs/ghost/job_info.json: key: '000-r1-"),
        ("jobs/ghost.json", "JOB", "{run}/jobs/ghost.json: key: '000-r1-"),
    ],
)
def test_a_journal_segment_that_is_not_ours_is_refused_before_anything_is_written(
    quark, write_config, tmp_path, path, content, message
):
    run = _submitted(quark, write_config, tmp_path / "run")
    for job_dir in sorted(p.with_suffix("") for p in run.glob("jobs/*.json")):
        finish_job(job_dir)
    before = {p: p.read_bytes() for p in run.rglob("*.json") if JOURNAL_DIR not in p.parts}
    if content == "JOB":  # another job's whole file, in a folder of its own
        content = next(run.glob("jobs/000-r1-*.json")).read_text()
    other = {**json.loads((run / "records/000-r2.json").read_text()), "quark_job_status": "FAILED"}
    good = {"path": "records/000-r2.json", "content": json.dumps(other)}  # valid, yet not written either
    (run / JOURNAL_DIR).mkdir(exist_ok=True)
    segment = run / JOURNAL_DIR / "00000001.json"
    segment.write_text(json.dumps({"schema_version": 1, "writes": [good, {"path": path, "content": content}]}))

    for _ in range(2):  # refused again: the segment is kept for the user to look at
        refused = quark("collect", run)
        assert refused.exit_code == 2
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("error: " + message.format(segment=segment, run=run)), line
    assert {p: p.read_bytes() for p in run.rglob("*.json") if JOURNAL_DIR not in p.parts} == before
    assert segment.exists() and not (tmp_path / "outside.json").exists() and not (run / "jobs/ghost").exists()


def test_rewrites_in_place_and_replacements_both_read_back_whole(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    small, large = records / "000-r1.json", records / "000-r2.json"
    small.write_text(json.dumps({"value": "x" * 900}))
    large.write_text(json.dumps({"value": "x" * 900}))
    small_inode = small.stat().st_ino
    shorter = json.dumps({"value": "y"}).encode()
    over_a_page = json.dumps({"value": "z" * PAGE}).encode()
    with group_commit(tmp_path):
        staged_write(small, shorter)
        staged_write(large, over_a_page)
    assert json.loads(small.read_text()) == {"value": "y"}  # padded, not cut: one write a kill cannot split
    assert small.stat().st_ino == small_inode
    assert json.loads(large.read_text()) == {"value": "z" * PAGE}  # over a page: a new file, renamed into place
    assert _segments_left(tmp_path) == []


def test_only_a_regular_file_of_at_most_a_page_is_rewritten_in_place(tmp_path):
    """``in_place`` opens the file to ask for its page ahead of the rewrite: its answer is still the
    file's own kind and size, whatever is at the path."""
    small = tmp_path / "small.json"
    small.write_bytes(b"{}")
    large = tmp_path / "large.json"
    large.write_bytes(b" " * (PAGE + 1))
    (tmp_path / "link.json").symlink_to(small)
    (tmp_path / "folder.json").mkdir()
    os.mkfifo(tmp_path / "fifo.json")
    content = b'{"a":1}'
    assert in_place(str(small), content)
    assert not in_place(str(small), b" " * (PAGE + 1))
    for name in ("large.json", "link.json", "folder.json", "fifo.json", "missing.json"):
        assert not in_place(str(tmp_path / name), content), name


def _not_a_regular_file(path: Path, kind: str) -> None:
    """Put a FIFO (which blocks whoever opens it to read) or a link to /dev/zero (a device whose read
    never ends) in place of ``path``."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


def _memory_capped() -> None:
    """In the child: 4 GiB of address space, so that a read of /dev/zero (the fault under test) fails
    the test with a MemoryError instead of filling the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


NOT_REGULAR = ["fifo", "device"]


@pytest.mark.parametrize("kind", NOT_REGULAR)
@pytest.mark.parametrize("name", ["records/000-r1.json", "jobs/000-r1-Numbers.Double.AsyncSquare-pre.json", "run.json"])
def test_a_fifo_or_device_in_place_of_a_record_job_or_run_file_is_an_error_not_a_hang(
    quark_process, write_config, tmp_path, name, kind
):
    run = tmp_path / "run"
    assert quark_process("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).returncode == 3
    path = run / name
    assert path.is_file()
    _not_a_regular_file(path, kind)
    what = {"records": "record", "jobs": "job_info"}.get(path.parent.name, "run.json")
    for command in (["status", run], ["collect", run]):
        # blocked on the FIFO, it would time out here; reading /dev/zero, it would run out of memory
        result = quark_process(*command, timeout=30, preexec_fn=_memory_capped)
        assert result.returncode == 2, result.stderr
        expected = f"error: {path}: is a FIFO, socket or device, not a {what} file; restore it or remove the run\n"
        assert result.stderr == expected


@pytest.mark.parametrize("kind", NOT_REGULAR)
@pytest.mark.parametrize(
    "name", ["index.json", "open_jobs.json", "open_job_summaries.json", "index.sha256", "results.json", "config.json"]
)
def test_a_fifo_or_device_in_place_of_an_index_file_results_json_or_config_json_is_rebuilt_not_a_hang(
    quark_process, write_config, tmp_path, name, kind
):
    """Caches of the run's files (config.json: of config.yml): one that is not a regular file is not
    trusted, and the command that reads the files writes it anew (reading ahead, mapping or reading
    it must not block)."""
    run = tmp_path / "run"
    assert quark_process("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).returncode == 3
    shown = quark_process("status", run, "--json").stdout
    _not_a_regular_file(run / name, kind)
    result = quark_process("status", run, "--json", timeout=30, preexec_fn=_memory_capped)
    assert result.returncode == 3 and json.loads(result.stdout)["stacks"] == json.loads(shown)["stacks"]
    result = quark_process("collect", run, timeout=30, preexec_fn=_memory_capped)
    assert result.returncode == 3, result.stderr
    if name not in ("open_job_summaries.json", "config.json"):  # collect never writes these unless it must
        assert (run / name).is_file(), "written anew as a regular file"
    assert quark_process("status", run, "--json", timeout=30, preexec_fn=_memory_capped).returncode == 3


@pytest.mark.parametrize("kind", NOT_REGULAR)
@pytest.mark.parametrize("name", ["config.yml", f"{JOURNAL_DIR}/00000099.json"])
def test_a_fifo_or_device_in_place_of_config_yml_or_a_journal_segment_fails_collect_in_a_line(
    quark_process, write_config, tmp_path, name, kind
):
    """What cannot be rebuilt (the run's config, a segment a killed command left) is refused in one
    line naming it: the run is not collected with a part of it unread."""
    run = tmp_path / "run"
    assert quark_process("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).returncode == 3
    _not_a_regular_file(run / name, kind)
    result = quark_process("collect", run, timeout=30, preexec_fn=_memory_capped)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {run / name}: ") and result.stderr.count("\n") == 1, result.stderr
    assert "not a regular file" in result.stderr or "NotRegularFileError" in result.stderr, result.stderr


def test_a_job_s_new_status_never_lands_without_the_backend_files_queued_before_it(quark, write_config, tmp_path):
    """A backend stages its files, then the engine the job's new status, in one batch: a kill after the
    batch's segment, before the backend's files are renamed into place, must not leave the job
    SUBMITTED with its files gone (the segment is replayed, the temporaries are cleared)."""
    from quark_cli.journal import replay
    from quark_cli.schema import check_journaled

    run = _submitted(quark, write_config, tmp_path / "run")
    job = next(run.glob("jobs/000-r1-*.json"))
    before = job.read_bytes()
    backend_file = job.with_suffix("") / "backend.json"
    (backend_file / "in-the-way").mkdir(parents=True)  # its rename fails: the kill between the two
    with pytest.raises(OSError):
        with group_commit(run):
            staged_write(backend_file, b"{}")
            staged_write(job, json.dumps({**json.loads(before), "status": "DONE"}).encode(), sync_dir=False)
    replay(run, check_journaled)
    assert job.read_bytes() == before


def _segments_left(run: Path) -> list[str]:
    """The journal's segments still to apply; retired ones are kept as empty spares (``<n>.spare``)."""
    return sorted(p.name for p in (run / JOURNAL_DIR).iterdir() if not p.name.endswith(".spare"))


def test_retired_segments_are_kept_empty_and_written_into_again(quark, write_config, tmp_path):
    """A checkpoint deletes no segment: on ext4 without a journal every deletion slows the files
    created near it for minutes. Segments are emptied, kept as spares, and the next command writes
    its segments into them."""
    run = _submitted(quark, write_config, tmp_path / "run")
    spares = {p.stat().st_ino: p for p in (run / JOURNAL_DIR).iterdir()}
    assert spares and all(p.name.endswith(".spare") and p.stat().st_size == 0 for p in spares.values())
    for job_dir in sorted(p.with_suffix("") for p in run.glob("jobs/*.json")):
        finish_job(job_dir)
    assert quark("collect", run).exit_code == 0
    after = {p.stat().st_ino: p for p in (run / JOURNAL_DIR).iterdir()}
    assert _segments_left(run) == []
    assert all(p.stat().st_size == 0 for p in after.values())
    assert set(spares) <= set(after)  # the same inodes: written into and retired again, none deleted
    assert max(int(p.stem) for p in after.values()) > max(int(p.stem) for p in spares.values())


MANY_STACKS = TWO_ITEMS_ASYNC.replace("repetitions: 2", "repetitions: 120")  # 240 stacks


@pytest.mark.parametrize("inline_seconds", [math.inf, 0.0], ids=["in-the-writing-thread", "in-a-background-thread"])
def test_a_collect_of_many_stacks_lands_whole_whichever_thread_commits(
    quark, write_config, tmp_path, monkeypatch, inline_seconds
):
    """Batches are committed by the thread that fills them while they are quick, by a background
    thread once two in a row were slow (a slow disk): 240 stacks, 480 writes in four batches, land
    whole either way, each stack with its own result."""
    monkeypatch.setattr(GroupCommit, "INLINE_SECONDS", inline_seconds)
    threads: list[str] = []
    commit_in_background = GroupCommit._commit_in_background

    def observed(self: GroupCommit) -> None:
        threads.append(threading.current_thread().name)
        commit_in_background(self)

    monkeypatch.setattr(GroupCommit, "_commit_in_background", observed)
    run = tmp_path / "run"
    assert quark("submit", _config(write_config, MANY_STACKS), "-o", run).exit_code == 3
    for job_dir in sorted(p.with_suffix("") for p in run.glob("jobs/*.json")):
        finish_job(job_dir)
    threads.clear()

    assert quark("collect", run).exit_code == 0

    assert set(threads) == (set() if inline_seconds == math.inf else {"quark-commit"})
    code, statuses = _statuses(quark, run)
    assert code == 0 and len(statuses) == 240 and set(statuses.values()) == {"FINISHED"}
    totals = {r["stack"]: r["module"]["total"] for r in json.loads((run / "results.json").read_text())}
    # start 1: 1, 2, 3 doubled and squared sum to 56; start 2: 2, 3, 4 to 116
    assert totals == {f"{item:03d}-r{rep}": (56, 116)[item] for item in (0, 1) for rep in range(1, 121)}
    for path in run.glob("records/*.json"):
        assert json.loads(path.read_text())["quark_job_status"] == "FINISHED"
    assert {json.loads(p.read_text())["status"] for p in run.glob("jobs/*.json")} == {"DONE"}
    assert _segments_left(run) == [] and not any((run / ".staging").iterdir())


@pytest.mark.parametrize("slow_batches, committer", [(1, "MainThread"), (2, "quark-commit")])
def test_one_slow_batch_leaves_the_batches_in_the_thread_that_fills_them(
    tmp_path, monkeypatch, slow_batches, committer
):
    """A batch slow once (its files' pages read from the disk, a busy moment) is not a slow disk:
    later batches stay in the writing thread; after two slow ones in a row a background thread
    commits the rest. Here a batch is slowed by a callback that sleeps past the limit."""
    monkeypatch.setattr(GroupCommit, "INLINE_SECONDS", 0.1)  # creating 128 files may take 10 ms here
    seen: list[str] = []
    records = tmp_path / "records"
    records.mkdir()
    with group_commit(tmp_path) as group:
        for batch in range(6):
            if batch < slow_batches:
                group.then(time.sleep, 0.2)
            if batch == 5:
                group.then(lambda: seen.append(threading.current_thread().name))
            for stack in range(GroupCommit.BATCH):
                group.write(records / f"{batch:03d}-r{stack + 1}.json", b"{}")
    assert seen == [committer]
    assert len(list(records.iterdir())) == 6 * GroupCommit.BATCH


def test_batches_of_rewrites_in_place_grow_and_batches_of_new_files_do_not(tmp_path, monkeypatch):
    """A batch creating files stays at ``BATCH`` (new files pile up unsynced and slow the disk); once
    a batch was all rewrites in place, the next may be twice as large, up to ``IN_PLACE_BATCH``, so
    a collect of 1,000 stacks syncs 6 segments, not 16. Every write lands either way."""
    sizes: list[int] = []
    append = Journal.append
    monkeypatch.setattr(Journal, "append", lambda self, writes: (sizes.append(len(writes)), append(self, writes))[1])
    records = tmp_path / "records"
    records.mkdir()
    files = [records / f"{stack:03d}-r1.json" for stack in range(1100)]
    with group_commit(tmp_path) as group:
        for path in files:
            group.write(path, b'{"v":0}')
    assert sizes == [GroupCommit.BATCH] * 8 + [1100 - 8 * GroupCommit.BATCH]

    inodes = [path.stat().st_ino for path in files]
    sizes.clear()
    with group_commit(tmp_path) as group:
        for path in files:
            group.write(path, b'{"v":1}')
    assert sizes == [128, 256, 512, 204]
    assert {path.read_bytes() for path in files} == {b'{"v":1}'}
    assert [path.stat().st_ino for path in files] == inodes  # rewritten in place, not replaced


def test_no_write_lands_after_a_batch_that_failed(tmp_path, monkeypatch):
    """Files land in the order they were queued. A batch that fails (here a folder that is a file) is
    not followed by the batches after it: the group's commit raises the failure, and nothing queued
    later appears, whichever thread would have committed it."""
    monkeypatch.setattr(GroupCommit, "BATCH", 4)
    (tmp_path / "blocked").write_text("a file where a folder should be")
    group = GroupCommit(tmp_path)
    group.write(tmp_path / "first" / "a.json", b"{}")
    for i in range(3):  # the fourth write fills the batch, which fails in this thread
        group.write(tmp_path / "blocked" / f"{i}.json", b"{}")
    for i in range(8):
        group.write(tmp_path / "later" / f"{i}.json", b"{}")

    with pytest.raises(OSError):
        group.close()
    with pytest.raises(OSError):
        group.commit()  # and again: the group stays failed
    assert (tmp_path / "first" / "a.json").read_bytes() == b"{}"  # queued before the failure
    assert not (tmp_path / "later").exists()
    assert not [p for p in (tmp_path / ".staging").iterdir()]


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_something_other_than_a_file_in_place_of_logging_log_fails_collect_in_a_line(
    quark_process, write_config, tmp_path, kind
):
    """Opened to append, a FIFO nobody reads would block the command's first log line for good."""
    run = tmp_path / "run"
    assert quark_process("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).returncode == 3
    log = run / "logging.log"
    log.unlink()
    {"fifo": os.mkfifo, "folder": Path.mkdir, "device": lambda path: path.symlink_to("/dev/null")}[kind](log)
    result = quark_process("collect", run, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: {log}: is a FIFO, socket, device or folder, not the run's log file; restore it or remove the run\n"
    )


@pytest.mark.parametrize("name", ["records/000-r1.json", "config.yml", "logging.log"])
def test_a_link_in_a_loop_in_place_of_a_run_file_is_an_error_in_a_line_not_exit_70(
    quark_process, write_config, tmp_path, name
):
    run = tmp_path / "run"
    assert quark_process("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).returncode == 3
    path = run / name
    path.unlink()
    path.symlink_to(path.name)
    result = quark_process("collect", run, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and str(path) in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr


def test_answers_polled_before_a_refused_login_are_saved(quark, write_config, tmp_path):
    """A refused login ends a collect's poll; the statuses other threads had already received are
    saved all the same, not polled again as if they never came (a54cc1c lost them)."""
    config = write_config(
        "application:\n  module: toy_modules:Numbers\n  config: {start: [1, 2, 3]}\n  submodules:\n"
        "    - module: toy_modules:TokenExpiringSquare\n      config: {auto_finish: [false]}\nrepetitions: 2\n"
    )
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    job_files = sorted(run.glob("jobs/*.json"))
    assert len(job_files) == 6
    for job_file in job_files:
        finish_job(job_file.with_suffix(""))
    result = quark("collect", run)
    assert result.exit_code != 0 and "token expired" in result.stderr
    statuses = {path.name[:6]: json.loads(path.read_text())["status"] for path in job_files}
    assert statuses.pop("002-r1") == "SUBMITTED"
    assert statuses == dict.fromkeys(["000-r1", "000-r2", "001-r1", "001-r2", "002-r2"], "DONE")


def _socket_at(path: Path) -> None:
    """A Unix socket in place of ``path``: opening it fails with ENXIO before its type can be checked."""
    import socket

    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(path))


@pytest.mark.parametrize("name", ["config.yml", ".lock", ".changing"])
@pytest.mark.parametrize("kind", ["socket", "fifo"])
def test_a_socket_or_fifo_in_place_of_the_lock_config_or_change_mark_is_an_error_in_a_line(
    quark_process, write_config, tmp_path, name, kind
):
    """``cancel`` changes the run at once (it marks the index as lagging in ``.changing``): a socket
    there ended it with exit 70, a FIFO blocked it for good. A FIFO as ``.lock`` works as a lock."""
    run = tmp_path / "run"
    assert quark_process("submit", _config(write_config, TWO_ITEMS_ASYNC), "-o", run).returncode == 3
    path = run / name
    if kind == "socket":
        _socket_at(path)
    else:
        path.unlink(missing_ok=True)
        os.mkfifo(path)
    result = quark_process("cancel", run, "000-r1", "--forget", timeout=30, preexec_fn=_memory_capped)
    if kind == "fifo" and name == ".lock":
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {path}: ") and result.stderr.count("\n") == 1, result.stderr


def test_a_config_given_through_a_pipe_is_read_once_and_saved_whole(write_config, tmp_path):
    """``quark submit <(...)``: the config was read twice, and the run saved the empty second read
    as its config.yml."""
    config = _config(write_config, TWO_ITEMS_ASYNC)
    run = tmp_path / "run"
    command = f'"{sys.executable}" -m quark_cli.cli submit <(cat "{config}") -o "{run}"'
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 3, done.stderr
    assert (run / "config.yml").read_text() == config.read_text()


def test_a_device_as_the_config_is_refused_by_its_size_not_read_without_end(quark_process, tmp_path):
    config = tmp_path / "zero.yml"
    config.symlink_to("/dev/zero")
    for command in (["validate", config], ["submit", config, "-o", tmp_path / "run"]):
        result = quark_process(*command, timeout=30, preexec_fn=_memory_capped)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"error: {config}: file is larger than 1000000 bytes; a benchmark config is small\n"


def test_a_device_as_the_module_file_is_refused_by_its_size_not_read_without_end(quark_process, write_config, tmp_path):
    """``-m`` names a QUARK 2 module file: a link to /dev/zero there was read until memory ran out."""
    modules = tmp_path / "module_db.json"
    modules.symlink_to("/dev/zero")
    config = _config(write_config, TWO_ITEMS_ASYNC)
    expected = f"error: {modules}: longer than 1000000 characters; a module file is a short list of modules\n"
    for command in (["validate", config], ["submit", config, "-o", tmp_path / "run"], ["modules"]):
        result = quark_process(*command, "-m", modules, timeout=30, preexec_fn=_memory_capped)
        assert result.returncode == 2, result.stderr
        assert result.stderr == expected, command
    assert not (tmp_path / "run").exists()
