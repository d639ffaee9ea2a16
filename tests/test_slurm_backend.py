"""The SLURM backend on a real one-node SLURM cluster that these tests start on this machine.

Stories: ``quark submit configs/ghz-slurm.yml`` queues one job per circuit and ``quark collect
--wait`` finishes the run with the metrics of a local run, asking ``squeue`` once per pass; a job
that fails on its node, one cancelled in the queue and one killed at its time limit fail their
stacks with the SLURM state; without the SLURM commands, with the controller down or when ``sbatch``
refuses, submit stops with one line and exit 2 and nothing is lost.

The cluster comes from ``tests/slurm/start-cluster.sh`` (installs Debian's slurm packages when they
are missing): it needs root. Elsewhere these tests skip, saying why; under ``CI=true`` they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from test_journal import _memory_capped
from test_local_async_cli import metrics

from quark_cli.jobs.base import AsyncStatus, JobContext
from quark_cli.jobs.slurm import SlurmAsyncJobManager

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "slurm"
CLUSTER_DIR = Path(os.environ.get("QUARK_SLURM_DIR", "/var/lib/quark-slurm-test"))
SLURM_CONF = CLUSTER_DIR / "slurm.conf"
TIME_LIMIT_WAIT = 150.0  # SLURM checks time limits every 30 s: a 1-minute job ends 60-90 s after it starts


def _cannot_start() -> str | None:
    """Why this machine cannot run the test cluster, or None."""
    if not sys.platform.startswith("linux"):
        return "the SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "starting the SLURM test cluster needs root (slurmd, munged and apt-get run as root)"
    installed = all(shutil.which(c) or Path("/usr/sbin", c).exists() for c in ("slurmctld", "slurmd", "sbatch"))
    if not installed and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install slurmctld, slurmd and munge"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """A running one-node cluster; SLURM_CONF points every SLURM command of the session at it.

    The cluster stays up afterwards (``tests/slurm/stop-cluster.sh`` stops it): the next session
    finds it at once, and a session never stops it under another one running on the same machine.
    """
    in_ci = os.environ.get("CI") == "true"
    reason = _cannot_start()
    if reason:
        if in_ci:
            pytest.fail(f"CI must run the SLURM tests, but {reason}")
        pytest.skip(reason)
    started = subprocess.run(["bash", str(SCRIPTS / "start-cluster.sh")], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        message = f"tests/slurm/start-cluster.sh failed: {started.stderr.strip() or started.stdout.strip()}"
        if in_ci:
            pytest.fail(message)
        pytest.skip(message)
    print(started.stdout, end="")  # shown with -s: how long the start-up took
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(SLURM_CONF))
        yield SLURM_CONF


def slurm(*args: str, env: dict[str, str] | None = None) -> str:
    """A SLURM command's output (the session's SLURM_CONF, and ``env`` added)."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60, env=environment).stdout


def slurm_state(job_id: str) -> str:
    return slurm("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T").strip()


def quark_cli(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    """``quark ARGS`` as a real process, as a user or cron runs it."""
    return subprocess.run(
        [sys.executable, "-m", "quark_cli.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def ghz_config(folder: Path, n_qubits: list[int], **device: object) -> Path:
    """configs/ghz-slurm.yml with fewer circuits and some device options changed."""
    raw = yaml.safe_load((REPO / "configs" / "ghz-slurm.yml").read_text())
    raw["application"]["config"]["n_qubits"] = n_qubits
    sampler = raw["application"]["submodules"][0]["submodules"][0]["config"]
    sampler.update({name: [value] for name, value in device.items()})
    path = folder / f"ghz-{len(list(folder.glob('*.yml')))}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def jobs(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run.glob("jobs/*.json"))]


def records(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())


def submit_held(folder: Path, **device: object) -> tuple[Path, Path, str]:
    """Submit one GHZ circuit held in the queue (``--hold``); returns run, job folder and SLURM id."""
    run = folder / "run"
    config = ghz_config(folder, [3], extra_sbatch=["--hold"], **device)
    submitted = quark_cli("submit", config, "-o", run)
    assert submitted.returncode == 3, submitted.stderr
    (job,) = jobs(run)
    assert slurm_state(job["info"]["id"]) == "PENDING"
    return run, run / "jobs" / job["key"], job["info"]["id"]


def wait_for_final_state(job_id: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while (state := slurm_state(job_id)) in {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}:
        assert time.monotonic() < deadline, f"SLURM job {job_id} still {state} after {seconds:.0f} s"
        time.sleep(1)
    return state


@pytest.fixture(scope="module", autouse=True)
def hung_job(slurm_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A job stuck on its input (as on a hung shared filesystem) with a 1-minute time limit.

    Started before every other test of this file, so that its minute overlaps them; the last test
    checks that SLURM killed it at its limit and that quark recorded the TIMEOUT. Its job file is
    swapped for a FIFO while it is held in the queue: the worker blocks reading it, burning no CPU.
    """
    run, job_dir, job_id = submit_held(tmp_path_factory.mktemp("hung"), time_limit="1")
    (job_dir / "slurm.job").unlink()
    os.mkfifo(job_dir / "slurm.job")
    slurm("scontrol", "release", job_id)
    yield run, job_id
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


def test_submit_then_collect_wait_finishes_with_the_metrics_of_a_local_run(tmp_path):
    run = tmp_path / "ghz-slurm"
    submitted = quark_cli("submit", REPO / "configs" / "ghz-slurm.yml", "-o", run)
    assert submitted.returncode == 3, submitted.stderr
    assert submitted.stdout.strip() == str(run)
    queued = jobs(run)
    assert len(queued) == 4 and {job["status"] for job in queued} == {"SUBMITTED"}
    for job in queued:
        assert set(job["info"]) == {"id", "cluster"} and job["info"]["cluster"] == "quark-test"
        script = (run / "jobs" / job["key"] / "slurm.sh").read_text()
        assert "#SBATCH --time=00:10:00" in script and "#SBATCH --mem=1G" in script
        assert f"exec {sys.executable} -m quark_cli.jobs.slurm_worker" in script

    # a pass of collect asks squeue once for all four jobs (seen through a logging squeue on PATH)
    wrapped = tmp_path / "bin"
    wrapped.mkdir()
    calls = tmp_path / "squeue-calls"
    squeue = shutil.which("squeue")
    (wrapped / "squeue").write_text(f'#!/bin/sh\necho "$SLURM_TIME_FORMAT|$@" >> {calls}\nexec {squeue} "$@"\n')
    (wrapped / "squeue").chmod(0o755)
    first = quark_cli("collect", run, env={"PATH": f"{wrapped}:{os.environ['PATH']}"})
    assert first.returncode in (0, 3), first.stdout + first.stderr
    (call,) = calls.read_text().splitlines()
    time_format, _, call = call.partition("|")
    assert time_format == "%s"  # epoch seconds: no local time to misread across a DST change
    asked = call.split(" -j ")[1].split()[0].split(",")
    assert sorted(asked) == sorted(job["info"]["id"] for job in queued)

    collected = quark_cli("collect", run, "--wait", "--timeout", "120")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert {job["status"] for job in jobs(run)} == {"DONE"}
    assert {record["quark_job_status"] for record in records(run)} == {"FINISHED"}
    assert all((run / "jobs" / job["key"] / "slurm.result.json").exists() for job in queued)
    for job in jobs(run):  # SLURM's own times, in UTC with offset, the instants SLURM holds
        epoch = slurm("squeue", "-h", "-t", "all", "-j", job["info"]["id"], "-o", "%V", env={"SLURM_TIME_FORMAT": "%s"})
        expected = datetime.fromtimestamp(int(epoch), UTC).isoformat()
        assert job["info"]["service_submitted"] == expected

    local = quark_cli("run", REPO / "configs" / "ghz.yml", "-o", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    assert metrics(run) == metrics(tmp_path / "local")
    assert {m["population"] for m in metrics(run)} == {1.0}


def test_maxcut_on_slurm_matches_the_local_run(quark, tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "maxcut-slurm.yml").read_text())
    raw["application"]["config"]["nodes"] = [5]
    raw["application"]["submodules"][0]["config"]["p"] = [1]
    raw["repetitions"] = 1
    (tmp_path / "maxcut-slurm.yml").write_text(yaml.safe_dump(raw))
    raw["application"]["submodules"][0]["submodules"][0]["name"] = "Sampler"
    (tmp_path / "maxcut.yml").write_text(yaml.safe_dump(raw))

    assert quark("submit", tmp_path / "maxcut-slurm.yml", "-o", tmp_path / "slurm").exit_code == 3
    collected = quark("collect", tmp_path / "slurm", "--wait", "--timeout", "120")
    assert collected.exit_code == 0, collected.stdout + collected.stderr
    assert quark("run", tmp_path / "maxcut.yml", "-o", tmp_path / "local").exit_code == 0
    assert metrics(tmp_path / "slurm") == metrics(tmp_path / "local")
    assert 0 < metrics(tmp_path / "slurm")[0]["approximation_ratio"] <= 1


def test_a_job_failing_on_its_node_fails_its_stack_with_the_slurm_state(quark, tmp_path):
    run, job_dir, job_id = submit_held(tmp_path)
    (job_dir / "slurm.job").write_bytes(b"not a myQLM job")  # damaged while it waited in the queue
    slurm("scontrol", "release", job_id)

    collected = quark("collect", run, "--wait", "--timeout", "120")
    assert collected.exit_code == 1
    assert slurm_state(job_id) == "FAILED"
    (job,) = jobs(run)
    assert job["status"] == "FAILED"
    assert job["error"].startswith("FAILED (exit code 1): error: ")  # then the worker's last log line
    (record,) = records(run)
    assert record["quark_job_status"] == "FAILED"
    assert record["error"] == f"job {job['key']} failed: {job['error']}"
    assert "Traceback" in (job_dir / "slurm.log").read_text()


def test_a_job_cancelled_in_the_queue_fails_its_stack_as_cancelled(quark, tmp_path):
    run, job_dir, job_id = submit_held(tmp_path)
    (job,) = jobs(run)
    manager = SlurmAsyncJobManager.from_job_info(job["info"], JobContext(job["key"], job_dir, job["module_config"]))
    assert manager.cancel() is True
    assert wait_for_final_state(job_id, 30) == "CANCELLED"
    assert manager.cancel() is False, "a job that has ended cannot be cancelled again"

    assert quark("collect", run).exit_code == 1
    (job,) = jobs(run)
    assert (job["status"], job["error"]) == ("CANCELLED", "CANCELLED")
    (record,) = records(run)
    assert record["quark_job_status"] == "FAILED"
    assert record["error"] == f"job {job['key']} cancelled: CANCELLED"
    assert quark("collect", run).exit_code == 1, "a plain collect does not resubmit it"
    assert jobs(run)[0]["info"]["id"] == job_id


@pytest.mark.parametrize("held", [True, False], ids=["still-queued", "already-ran"])
def test_a_submit_killed_right_after_sbatch_is_adopted_not_submitted_twice(tmp_path, held):
    # sbatch queues the job, then the quark process dies before it can record the job's id
    wrapped = tmp_path / "bin"
    wrapped.mkdir()
    (wrapped / "sbatch").write_text(f'#!/bin/sh\n{shutil.which("sbatch")} "$@" && kill -9 $PPID\n')
    (wrapped / "sbatch").chmod(0o755)
    run = tmp_path / "run"
    config = ghz_config(tmp_path, [3], extra_sbatch=["--hold"] if held else [])
    killed = quark_cli("submit", config, "-o", run, env={"PATH": f"{wrapped}:{os.environ['PATH']}"})
    assert killed.returncode == -9
    (intent,) = jobs(run)
    assert intent["status"] == "SUBMITTING" and intent["info"] == {}
    tag = f"quark-submission:{intent['submission_id']}"
    (job_id,) = [
        line.split("|")[0]
        for line in slurm("squeue", "-h", "-t", "all", "--me", "-o", "%i|%k").splitlines()
        if line.endswith(tag)
    ]
    if not held:
        assert wait_for_final_state(job_id, 60) == "COMPLETED"

    adopted = quark_cli("collect", run)
    assert adopted.returncode in (0, 3), adopted.stdout + adopted.stderr
    (job,) = jobs(run)
    assert job["info"]["id"] == job_id and job.get("adopted_at")
    if held:
        slurm("scontrol", "release", job_id)
    finished = quark_cli("collect", run, "--wait", "--timeout", "120")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert records(run)[0]["module"]["population"] == 1.0
    job_dir = str((run / "jobs" / job["key"]).resolve())
    sent = [line for line in slurm("squeue", "-h", "-t", "all", "--me", "-o", "%Z").splitlines() if line == job_dir]
    assert len(sent) == 1, "the job went to SLURM once"


def test_a_job_slurm_never_knew_fails_with_the_reason(tmp_path):
    manager = SlurmAsyncJobManager.from_job_info({"id": "987654"}, JobContext("lost", tmp_path, {}))
    assert manager.get_status() is AsyncStatus.FAILED
    assert manager.status_reason == "UNKNOWN: SLURM no longer knows job 987654 and it left no result"


def test_without_slurm_commands_submit_stops_with_exit_2_and_collect_submits_later(tmp_path):
    run = tmp_path / "run"
    config = ghz_config(tmp_path, [2, 3])
    bare = tmp_path / "empty-bin"
    bare.mkdir()
    refused = quark_cli("submit", config, "-o", run, env={"PATH": str(bare)})
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: sbatch not found on PATH: install the SLURM client commands")
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert jobs(run) == [], "nothing was queued, so no job is recorded"

    assert quark_cli("collect", run).returncode == 3, "with SLURM back on PATH, collect submits them"
    finished = quark_cli("collect", run, "--wait", "--timeout", "120")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert len(jobs(run)) == 2 and {job["status"] for job in jobs(run)} == {"DONE"}


def test_a_down_controller_or_a_refused_job_stops_submit_and_loses_nothing(tmp_path, slurm_cluster):
    # a controller nobody answers at: the same cluster's config with another port
    down = tmp_path / "down.conf"
    text = slurm_cluster.read_text().replace("SlurmctldPort=6917", "SlurmctldPort=6999")
    down.write_text(text + "MessageTimeout=2\n")
    unreachable = quark_cli("submit", ghz_config(tmp_path, [2]), "-o", tmp_path / "down", env={"SLURM_CONF": str(down)})
    assert unreachable.returncode == 2
    assert "error: sbatch failed: " in unreachable.stderr and "Unable to contact slurm controller" in unreachable.stderr
    assert jobs(tmp_path / "down") == []

    refused = quark_cli("submit", ghz_config(tmp_path, [2], partition="nosuch"), "-o", tmp_path / "refused")
    assert refused.returncode == 2
    assert "error: sbatch failed: " in refused.stderr and "Invalid partition name specified" in refused.stderr
    assert jobs(tmp_path / "refused") == []

    elsewhere = ghz_config(tmp_path, [2], extra_sbatch=["--output=/tmp/elsewhere.log"])
    moved = quark_cli("submit", elsewhere, "-o", tmp_path / "moved")
    assert moved.returncode == 2
    assert "quark-cli sets --output itself" in moved.stderr and jobs(tmp_path / "moved") == []

    # a queued job outlives an outage of the controller
    run = tmp_path / "run"
    assert quark_cli("submit", ghz_config(tmp_path, [2]), "-o", run).returncode == 3
    outage = quark_cli("collect", run, env={"SLURM_CONF": str(down)})
    assert outage.returncode == 3
    assert "Unable to contact slurm controller" in outage.stdout + outage.stderr
    assert [job["status"] for job in jobs(run)] == ["SUBMITTED"]
    assert quark_cli("collect", run, "--wait", "--timeout", "120").returncode == 0


def test_a_job_past_its_time_limit_is_recorded_as_timeout(quark, hung_job):
    run, job_id = hung_job
    assert wait_for_final_state(job_id, TIME_LIMIT_WAIT) == "TIMEOUT"
    assert quark("collect", run).exit_code == 1
    (job,) = jobs(run)
    assert (job["status"], job["error"]) == ("FAILED", "TIMEOUT (time limit 1:00)")
    (record,) = records(run)
    assert record["quark_job_status"] == "FAILED"
    assert record["error"] == f"job {job['key']} failed: TIMEOUT (time limit 1:00)"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_in_place_of_a_failed_job_s_log_does_not_hang_collect(tmp_path, kind):
    """The reason of a failed job quotes its log's last line: a FIFO there (opened, it blocks) or a
    link to /dev/zero (read, it never ends) gives the reason without it, not a hung collect."""
    run, job_dir, job_id = submit_held(tmp_path)
    (job_dir / "slurm.job").write_bytes(b"not a myQLM job")
    slurm("scontrol", "release", job_id)
    assert wait_for_final_state(job_id, 120) == "FAILED"
    log = job_dir / "slurm.log"
    log.unlink()
    if kind == "fifo":
        os.mkfifo(log)
    else:
        log.symlink_to("/dev/zero")
    collected = subprocess.run(
        [sys.executable, "-m", "quark_cli.cli", "collect", run],
        capture_output=True,
        text=True,
        timeout=60,  # blocked on the FIFO or reading /dev/zero, it would time out here
        env=os.environ,
        preexec_fn=_memory_capped,
    )
    assert collected.returncode == 1, collected.stderr
    (job,) = jobs(run)
    assert job["status"] == "FAILED" and job["error"] == "FAILED (exit code 1)"
