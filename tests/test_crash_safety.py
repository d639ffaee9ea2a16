"""Fault injection: ``quark submit`` and ``quark collect`` killed with SIGKILL at random points.

After every kill the run must load (``quark status`` neither 2 nor 70), every file must parse, every
job the service holds must be known to the run (by its id, or as a recorded intent that collect
resolves), and no job may be on the service twice. Then ``quark collect --wait`` must finish the
run with the results of a run nobody killed.

The kill points are found by timing, not by hooks in quark: each command is watched until it holds
the run's lock (from /proc/locks), then killed after a random delay drawn from the time an uncut
command holds it. Seeded; the seed and the figures (kills, lost, duplicated, corrupt) are printed.

CI runs a few kills per backend (about 20 in all); ``QUARK_STRESS=1`` (``make stress``) runs at
least 100. ``QUARK_CRASH_SEED`` picks another seed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_async_engine import _comparable
from test_local_jobs import kill_processes_of

from quark_cli.state import LOCK_FILE, lock_holder

TESTS = Path(__file__).resolve().parent
STRESS = bool(os.environ.get("QUARK_STRESS"))
SEED = int(os.environ.get("QUARK_CRASH_SEED", "20261125"))
OK_STATUS = {0, 1, 3}  # loads: all finished, some failed, some pending
OURS = (  # quark's temporaries
    ".run.json.",
    ".results.json.",
    ".index.json.",
    ".open_jobs.json.",
    ".open_job_summaries.json.",
    ".index_changes.json.",
    ".index.sha256.",
    ".config.yml.",
    ".job_info.json.",
)
QUARK_FOLDERS = ("records", "jobs", ".staging")  # every temporary in these is quark's (jobs/<key>/ is the backend's)

TOY = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2, 3], count: [1, 2, 3, 4]}
  submodules:
    - name: Double
      submodules: [{name: AsyncSquare, config: {auto_finish: [true]}}]
    - module: toy_modules:AsyncPrePost
      config: {auto_finish: [true]}
repetitions: 2
"""
TOY_STACKS, TOY_JOBS = 48, 72  # 12 items x 2 branches x 2 repetitions; AsyncPrePost submits twice

LOCAL = """
application:
  name: GHZ
  config: {n_qubits: [2, 3, 4, 5]}
  submodules:
    - name: GHZCircuit
      submodules: [{name: LocalAsyncSampler, config: {shots: [500], seed: [3], workers: [2]}}]
"""

QAPTIVA = """
application:
  name: GHZ
  config: {n_qubits: [2, 3, 4]}
  submodules:
    - name: GHZCircuit
      submodules:
        - name: QaptivaSampler
          config: {hostname: [127.0.0.1], port: [PORT], check_host: [false], shots: [500], seed: [3]}
"""


@dataclass
class Figures:
    """What a series of kills did: the issue's figures."""

    backend: str
    kills: int = 0
    finished_uncut: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupt: int = 0
    leftover_temp_files: int = 0
    uncertain_seen: int = 0
    problems: list[str] = field(default_factory=list)

    def report(self) -> None:
        print(json.dumps({k: v for k, v in self.__dict__.items() if k != "problems"} | {"seed": SEED}))
        assert not self.problems, "\n".join(self.problems[:20])
        assert self.lost == self.duplicated == self.corrupt == 0


class Service:
    """What the service side of a backend knows: its jobs, by the run's job folder."""

    def begin(self, run: Path) -> None:
        """A new run starts: jobs the service held before are not its."""

    def jobs(self, run: Path) -> dict[str, list[str]]:
        """Job folder -> ids of the jobs the service holds for it (more than one: a duplicate)."""
        raise NotImplementedError


class ControlledService(Service):
    def jobs(self, run: Path) -> dict[str, list[str]]:
        found = {}
        for path in run.glob("jobs/*/controlled.json"):
            state = json.loads(path.read_text())
            found[path.parent.name] = [state["id"]] * state["submissions"]
        return found


class LocalService(Service):
    def jobs(self, run: Path) -> dict[str, list[str]]:
        found = {}
        for path in run.glob("jobs/*/local.json"):
            state = json.loads(path.read_text())
            found[path.parent.name] = [state["id"]] * max(1, int(state.get("attempt") or 0))
        return found


class QaptivaService(Service):
    def __init__(self, server) -> None:
        self.server = server
        self.earlier: dict[Path, set[str]] = {}

    def begin(self, run: Path) -> None:
        self.earlier[run] = set(self.server.job_ids())

    def jobs(self, run: Path) -> dict[str, list[str]]:
        intents = {}
        for path in run.glob("jobs/*.json"):
            job = json.loads(path.read_text())
            for tag in [job.get("submission_id")] + [a.get("submission_id") for a in job.get("previous_attempts", [])]:
                intents[tag] = path.stem
        found: dict[str, list[str]] = {}
        with self.server._cond:
            for job_id, job in self.server._jobs.items():
                if job_id in self.earlier[run] or self.server._status_name(job.status) == "cancelled":
                    continue  # a copy the client made, cancelled by quark
                tag = (job.batch.meta_data or {}).get("quark_submission")
                found.setdefault(intents.get(tag, f"<unknown tag {tag} of {job_id}>"), []).append(job_id)
        return found


def start(*args: object, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_quark(*args: object, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quark_cli.cli", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def held_for(run: Path, proc: subprocess.Popen) -> float | None:
    """Wait until ``proc`` holds the run's lock; None if it ended first. Returns when it took it."""
    while proc.poll() is None:
        if lock_holder(run / LOCK_FILE) == proc.pid:
            return time.monotonic()
        time.sleep(0.0005)
    return None


def calibrate(run: Path, args: list[object], env: dict | None) -> float:
    """How long an uncut command holds the run: the range the kill delays are drawn from."""
    proc = start(*args, env=env)
    taken = held_for(run, proc) or time.monotonic()
    while proc.poll() is None and lock_holder(run / LOCK_FILE) == proc.pid:
        time.sleep(0.0005)
    released = time.monotonic()
    proc.wait(timeout=180)
    assert proc.returncode in OK_STATUS, proc.stderr.read()
    return max(0.02, released - taken)


def kill_somewhere(run: Path, args: list[object], env: dict | None, hold: float, rng: random.Random) -> bool:
    """Start quark ARGS and SIGKILL it a random moment after it took the run; False if it ended first."""
    proc = start(*args, env=env)
    taken = held_for(run, proc)
    if taken is not None:
        time.sleep(max(0.0, taken + rng.uniform(0, hold) - time.monotonic()))
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return killed


def check(run: Path, service: Service, figures: Figures, when: str) -> None:
    """The run loads, its files parse, the service's jobs are all known to it, none twice."""
    if not (run / "run.json").exists():  # killed while creating it: its lock, maybe the config, temporaries
        leftovers = {p.name for p in run.iterdir()} if run.exists() else set()
        temporaries = {name for name in leftovers if name.startswith((".config.yml.", ".run.json."))}
        if leftovers - temporaries - {LOCK_FILE, "config.yml"} or service.jobs(run):
            figures.corrupt += 1
            figures.problems.append(f"{when}: half-made run {run}: {sorted(leftovers)}")
        return
    status = run_quark("status", run, "--json")
    if status.returncode not in OK_STATUS:
        figures.corrupt += 1
        figures.problems.append(f"{when}: status exit {status.returncode}: {status.stderr.strip()}")
        return
    report = json.loads(status.stdout)
    figures.uncertain_seen += report["job_totals"].get("SUBMITTING", 0)
    for path in run.rglob("*"):
        if path.suffix == ".json" and path.is_file():
            try:
                json.loads(path.read_text())
            except ValueError:
                figures.corrupt += 1
                figures.problems.append(f"{when}: {path} does not parse")
    saved = {job["key"]: job for job in map(json.loads, map(Path.read_text, run.glob("jobs/*.json")))}
    for folder, ids in service.jobs(run).items():
        if len(ids) > 1:
            figures.duplicated += len(ids) - 1
            figures.problems.append(f"{when}: {folder} is on the service {len(ids)} times: {ids}")
        job = saved.get(folder)
        if job is None:
            figures.lost += 1
            figures.problems.append(f"{when}: the service holds {ids} for {folder}, which the run does not know")
        elif job["status"] != "SUBMITTING" and job["info"].get("id") not in ids:
            figures.lost += 1
            figures.problems.append(f"{when}: {folder} says {job['info'].get('id')}, the service holds {ids}")


@dataclass
class Scenario:
    backend: str
    config: str
    stacks: int
    jobs: int
    service: Service
    env: dict | None = None
    collect_kills: int = 1


def series(scenario: Scenario, root: Path, iterations: int, reference: list[dict]) -> Figures:
    """``iterations`` runs, each killed once while submitting and ``collect_kills`` times while collecting."""
    rng = random.Random(f"{SEED}-{scenario.backend}")
    figures = Figures(scenario.backend)
    config = root / f"{scenario.backend}.yml"
    config.write_text(scenario.config)
    submit_holds, collect_holds = [], []
    for attempt in range(3 if STRESS else 1):  # the median of three: one slow start must not stretch the window
        probe = root / f"calibration-{attempt}"
        scenario.service.begin(probe)
        submit_holds.append(calibrate(probe, ["submit", config, "-o", probe], scenario.env))
        collect_holds.append(calibrate(probe, ["collect", probe], scenario.env))
    submit_hold, collect_hold = (
        sorted(submit_holds)[len(submit_holds) // 2],
        sorted(collect_holds)[len(collect_holds) // 2],
    )
    for number in range(iterations):
        run = root / f"run-{number}"
        scenario.service.begin(run)
        submitted = kill_somewhere(run, ["submit", config, "-o", run], scenario.env, submit_hold, rng)
        figures.kills += submitted
        figures.finished_uncut += not submitted
        check(run, scenario.service, figures, f"run {number} after submit")
        if not (run / "run.json").exists():  # killed while creating it: the user submits again
            again = run_quark("submit", config, "-o", run, env=scenario.env)
            if again.returncode not in OK_STATUS:
                figures.corrupt += 1
                figures.problems.append(f"run {number}: submit again: {again.returncode} {again.stderr.strip()}")
                continue
        for kill in range(scenario.collect_kills):
            collected = kill_somewhere(run, ["collect", run], scenario.env, collect_hold, rng)
            figures.kills += collected
            figures.finished_uncut += not collected
            check(run, scenario.service, figures, f"run {number} after collect {kill}")
        final = run_quark("collect", run, "--wait", "--timeout", "120", env=scenario.env)
        check(run, scenario.service, figures, f"run {number} at the end")
        leftovers = [p for p in run.rglob("*.tmp") if p.parent.name in QUARK_FOLDERS or p.name.startswith(OURS)]
        figures.leftover_temp_files += len(leftovers)
        figures.problems.extend(f"run {number}: {p} left behind by a killed write" for p in leftovers)
        records = json.loads((run / "results.json").read_text())
        if final.returncode != 0 or len(records) != scenario.stacks:
            figures.lost += scenario.stacks - sum(r["quark_job_status"] == "FINISHED" for r in records)
            figures.problems.append(f"run {number}: final collect {final.returncode}: {final.stderr[-500:]}")
        elif _comparable(records) != reference:
            figures.corrupt += 1
            figures.problems.append(f"run {number}: results differ from a run nobody killed")
        on_service = sum(len(ids) for ids in scenario.service.jobs(run).values())
        if on_service != scenario.jobs:
            figures.problems.append(f"run {number}: the service ran {on_service} jobs, expected {scenario.jobs}")
    return figures


def reference_results(scenario: Scenario, root: Path) -> list[dict]:
    """The results of a run nobody killed."""
    root.mkdir()
    config = root / "reference.yml"
    config.write_text(scenario.config)
    run = root / "reference"
    scenario.service.begin(run)
    assert run_quark("submit", config, "-o", run, env=scenario.env).returncode in OK_STATUS
    done = run_quark("collect", run, "--wait", "--timeout", "120", env=scenario.env)
    assert done.returncode == 0, done.stderr
    assert sum(len(ids) for ids in scenario.service.jobs(run).values()) == scenario.jobs
    return _comparable(json.loads((run / "results.json").read_text()))


def test_controlled_backend_survives_kills(tmp_path):
    scenario = Scenario("controlled", TOY, TOY_STACKS, TOY_JOBS, ControlledService(), collect_kills=2)
    # 34 runs in stress mode: with quicker commands more of them end before their kill, and the
    # three backends together must still land the 130 kills issue 18 asks of ``make stress``
    figures = series(scenario, tmp_path, 34 if STRESS else 5, reference_results(scenario, tmp_path / "ref"))
    figures.report()
    assert figures.kills >= (80 if STRESS else 8), "kills landed while quark held the run"


@pytest.fixture
def local_root(tmp_path) -> Iterator[Path]:
    yield tmp_path
    for jobs in tmp_path.glob("*/jobs"):
        kill_processes_of(jobs.resolve())


def test_local_backend_survives_kills(local_root):
    scenario = Scenario("local", LOCAL, 4, 4, LocalService())
    figures = series(scenario, local_root, 12 if STRESS else 1, reference_results(scenario, local_root / "ref"))
    figures.report()
    assert figures.kills >= (16 if STRESS else 1)


@pytest.mark.skipif(not STRESS, reason="stress mode only (QUARK_STRESS=1, make stress): every process imports myQLM")
def test_qaptiva_backend_survives_kills(tmp_path, client_env):
    from qaptiva_server import StandInQaptiva

    env = {"HOME": str(client_env), "QLM_USER": "alice", "QLM_PASSWD": "wonderland"}
    with StandInQaptiva(delay=0.2) as server:
        scenario = Scenario("qaptiva", QAPTIVA.replace("PORT", str(server.port)), 3, 3, QaptivaService(server), env)
        figures = series(scenario, tmp_path, 12, reference_results(scenario, tmp_path / "ref"))
    figures.report()
    assert figures.kills >= 16
