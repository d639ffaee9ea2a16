"""One writer per run: a second quark on a busy run stops at once, a dead one never blocks it.

Stories: cron starts ``quark collect`` while another is still working on the run, or the user runs
``quark submit -o DIR`` twice; the second exits 75 within a second naming the first's pid. A quark
killed with SIGKILL leaves its lock file behind, and the next command goes straight on. Several
collects started together: exactly one works, and the run ends as a single collect leaves it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_async_engine import _comparable, _results
from toy_modules import SERVICE_FILE, finish_job, submissions

from quark_cli.state import LOCK_FILE, lock_holder

TESTS = Path(__file__).resolve().parent
ASYNC = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules:
    - name: Double
      submodules: [{name: AsyncSquare}]
    - module: toy_modules:AsyncPrePost
repetitions: 2
"""
SLEEPY = """
application:
  module: toy_modules:Sleepy
  config: {seconds: [30.0]}
"""


def start(*args: object) -> subprocess.Popen:
    """``quark ARGS`` in the background, as cron would start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_holder(run: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while lock_holder(run / LOCK_FILE) != proc.pid:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first quark never took the run"
        time.sleep(0.01)


def timed(quark_process, *args: object) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = quark_process(*args)
    return result, time.perf_counter() - started


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_second_collect_and_submit_exit_75_within_a_second_naming_the_holder(quark, quark_process, write_config):
    run = write_config(ASYNC).parent / "run"
    assert quark("submit", write_config(ASYNC), "-o", run).exit_code == 3
    holder = start("collect", run, "--wait", "--timeout", "60")
    try:
        wait_for_holder(run, holder)
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        for args in (("collect", run), ("submit", write_config(ASYNC), "-o", run)):
            result, seconds = timed(quark_process, *args)
            assert result.returncode == 75, result.stderr
            assert f"run {run} is being processed by pid {holder.pid}" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
            assert seconds < 1.0, f"quark {args[0]} took {seconds:.2f}s to say the run is busy"
        waited, seconds = timed(quark_process, "collect", run, "--wait-lock", "0.5")
        assert waited.returncode == 75 and seconds >= 0.5
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before, "refused commands write nothing"
    finally:
        stop(holder)


def test_a_killed_holder_never_blocks_the_next_command(quark, quark_process, write_config):
    run = write_config(ASYNC).parent / "run"
    assert quark("submit", write_config(ASYNC), "-o", run).exit_code == 3
    holder = start("collect", run, "--wait", "--timeout", "60")
    wait_for_holder(run, holder)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    assert (run / LOCK_FILE).exists(), "the dead holder's lock file is still there"
    result, seconds = timed(quark_process, "collect", run)
    assert result.returncode == 3, result.stderr
    assert seconds < 1.0
    service = threading.Event()
    threading.Thread(target=play_service, args=(run, service), daemon=True).start()
    try:
        assert quark_process("collect", run, "--wait", "--timeout", "30").returncode == 0
    finally:
        service.set()
    assert submissions(run) == 2 * 2 + 2 * 2 * 2


def test_submit_to_a_folder_another_submit_is_creating(quark_process, write_config, tmp_path):
    config = write_config(SLEEPY)
    run = tmp_path / "run"
    first = start("submit", config, "-o", run)
    try:
        wait_for_holder(run, first)
        second, seconds = timed(quark_process, "submit", config, "-o", run)
        assert second.returncode == 75 and seconds < 1.0
        assert second.stderr.strip() == f"error: run {run} is being processed by pid {first.pid}; choose another -o DIR"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.communicate()
    again = quark_process("submit", config, "-o", run)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"error: {run}: already holds a run; 'quark collect {run}' continues it, 'quark status' shows where it "
        "stands, or choose another -o DIR"
    )
    assert json.loads(quark_process("status", run, "--json").stdout)["stack_totals"]["NOT_STARTED"] == 1


def test_a_folder_left_by_a_submit_killed_while_creating_it_is_taken_again(quark, write_config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).touch()
    (run / "config.yml").write_text("half")  # killed before run.json: not a run yet
    assert quark("status", run).exit_code == 2
    assert quark("submit", write_config(ASYNC), "-o", run).exit_code == 3
    assert (run / "config.yml").read_text() == write_config(ASYNC).read_text()
    (run / "precious.txt").write_text("keep")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yml").write_text("the user's own file")
    refused = quark("submit", write_config(ASYNC), "-o", other)
    assert refused.exit_code == 2 and "already exists and is not empty" in refused.stderr
    assert sorted(p.name for p in other.iterdir()) == ["config.yml"]


@pytest.mark.parametrize("count", [2, 8])
def test_collects_started_together_exactly_one_works(quark, write_config, tmp_path, count):
    config = write_config(ASYNC)
    runs = {name: tmp_path / name for name in ("crowd", "single")}
    for run in runs.values():
        assert quark("submit", config, "-o", run).exit_code == 3

    crowd = [start("collect", runs["crowd"], "--wait", "--timeout", "60") for _ in range(count)]
    started = time.monotonic()
    service = threading.Event()
    try:
        ended: dict[int, tuple[float, int, str]] = {}
        while len(ended) < count - 1:  # the service keeps every job waiting until the others gave up
            for proc in crowd:
                if proc.pid not in ended and proc.poll() is not None:
                    ended[proc.pid] = (time.monotonic() - started, proc.returncode, proc.communicate()[1])
            assert time.monotonic() - started < 60, "the other collects did not give up"
            time.sleep(0.01)
        (worker,) = [proc for proc in crowd if proc.pid not in ended]
        threading.Thread(target=play_service, args=(runs["crowd"], service), daemon=True).start()
        out, err = worker.communicate(timeout=60)
    finally:
        service.set()
        for proc in crowd:
            stop(proc)
    assert worker.returncode == 0, out + err
    for _, code, stderr in ended.values():
        assert code == 75 and f"is being processed by pid {worker.pid}" in stderr, stderr
    print(f"{count} collects: the others exited 75 after {sorted(round(e[0], 2) for e in ended.values())} s")
    assert max(seconds for seconds, _, _ in ended.values()) < 20

    service = threading.Event()
    threading.Thread(target=play_service, args=(runs["single"], service), daemon=True).start()
    single = quark("collect", runs["single"], "--wait", "--timeout", "60")
    service.set()
    assert single.exit_code == 0
    assert _comparable(_results(runs["crowd"])) == _comparable(_results(runs["single"]))
    assert submissions(runs["crowd"]) == submissions(runs["single"]) == 2 * 2 + 2 * 2 * 2
    history = json.loads((runs["crowd"] / "run.json").read_text())["history"]
    assert [entry["command"] for entry in history] == ["submit", "collect"], "only one collect touched the run"


def play_service(run: Path, stop_event: threading.Event) -> None:
    """The service: every submitted job of ``run`` finishes a moment after it appears."""
    while not stop_event.is_set():
        for path in run.glob(f"jobs/*/{SERVICE_FILE}"):
            if json.loads(path.read_text())["state"] == "SUBMITTED":
                finish_job(path.parent)
        time.sleep(0.02)
