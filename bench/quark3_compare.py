"""QUARK 3 side by side: the same 1,000-job interrupted pipeline, resumed by quark-cli and by QUARK 3.

The pipeline is application -> asynchronous device, one pipeline per number 0..N-1 (quark-cli: one
backlog item each; QUARK 3 (``quark-framework``): one pipeline tree each). The device submits a job
that squares the number to a file service (``quark3_pipeline/service.py``, the same for both) and the
run stops there. The bench then plays the service, finishes every job, and times what a user runs
next, as a subprocess: ``quark collect RUN`` against QUARK 3's ``quark --resume-dir RUN``. Every
repetition makes a first run to the interrupt, into a fresh folder and service, and resumes that
very run, as a user does; the two frameworks take turns. Medians are reported, and each resumed
run is checked to hold all N results.

A second, small scenario runs a tree that branches below its root (app -> mid -> devices a, b) whose
two jobs finish at different times, and records what each framework collects and exits with.

Needs QUARK 3's own Python >= 3.12 virtualenv, ``bench/.venv-quark3`` (``make bench-quark3``).
Run by ``make bench``; the figures go to ``bench/results.json`` under ``quark3_resume``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import compile_sources, env, floor_ratio, save, settle_disk, work_dir  # noqa: E402
from quark3_pipeline import service  # noqa: E402

from quark_cli import __version__ as quark_cli_version  # noqa: E402

RESULTS_KEY = "quark3_resume"
QUARK3_VENV = BENCH / ".venv-quark3"
QUARK3 = QUARK3_VENV / "bin" / "quark"
QUARK3_PYTHON = QUARK3_VENV / "bin" / "python"
QUARK3_SETUP_FILE = QUARK3_VENV / "setup-seconds"
QUARK_CLI = Path(sys.executable).parent / "quark"
QUARK3_PICKLE = "intermediate_run_state.pkl"
MODULES = "quark3_pipeline.quark_cli_modules"
PLUGIN = "quark3_pipeline.quark3_plugin"
COMMAND_TIMEOUT = 1800


class BenchError(Exception):
    """The bench could not measure what it claims (a command failed, a run lost results)."""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command as a user would and return its wall time in seconds and the finished process."""
    start = time.perf_counter()
    process = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    return time.perf_counter() - start, process


def expect_exit(process: subprocess.CompletedProcess, codes: set[int], what: str) -> None:
    if process.returncode not in codes:
        tail = (process.stderr or process.stdout).strip().splitlines()[-5:]
        raise BenchError(f"{what} exited {process.returncode}, expected {sorted(codes)}: {' | '.join(tail)}")


class _Framework:
    """One framework under test: its work folder and the file service its jobs go to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.service = root / "service"
        self.service.mkdir(parents=True)
        self.env = env(**{service.SERVICE_ENV: str(self.service)})


class QuarkCli(_Framework):
    """quark-cli: ``quark submit`` interrupts, ``quark collect`` resumes; results are QUARK 2 records."""

    name = "quark-cli"

    def write_config(self, numbers: list[int], devices: list[str] | None = None) -> Path:
        device = {"module": f"{MODULES}:BenchDevice"}
        if devices is None:
            submodules = [device]
        else:
            branches = [{**device, "config": {"label": [label]}} for label in devices]
            submodules = [{"module": f"{MODULES}:BenchMid", "submodules": branches}]
        config = {
            "application": {"module": f"{MODULES}:BenchApp", "config": {"index": numbers}, "submodules": submodules}
        }
        path = self.root / "config.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self, config: Path) -> tuple[Path, float, int]:
        run_dir = self.root / "interrupted"
        seconds, process = run([str(QUARK_CLI), "submit", str(config), "-o", str(run_dir)], self.root, self.env)
        expect_exit(process, {3}, "quark submit")
        return run_dir, seconds, process.returncode

    def resume_command(self, run_dir: Path) -> list[str]:
        return [str(QUARK_CLI), "collect", str(run_dir)]

    def outcome(self, run_dir: Path) -> dict[str, Any]:
        """Finished pipelines as {index: squared}, device labels collected, failures and whether any waits."""
        records = json.loads((run_dir / "results.json").read_text())
        states = Counter(record["quark_job_status"] for record in records)
        finished: dict[int, Any] = {}
        labels: list[str] = []
        names: list[str] = []
        for record in records:
            if record["quark_job_status"] != "FINISHED":
                continue
            app = record["module"]
            finished[app["module_config"]["index"]] = app.get("squared")
            modules = [app]
            while modules[-1].get("submodule"):
                modules.append(modules[-1]["submodule"])
            labels.append(modules[-1]["module_config"].get("label", ""))
            names.append(f"{record['stack']} " + "-".join(_name(module) for module in modules))
        return {
            "finished": finished,
            "finished_pipelines": sorted(names),
            "labels": sorted(labels),
            "failed": [record.get("error") for record in records if record["quark_job_status"] == "FAILED"],
            "waiting": states["INTERRUPTED"],
        }


def _name(module: dict[str, Any]) -> str:
    values = "_".join(str(value) for value in module["module_config"].values())
    return module["module_name"] + values


class Quark3(_Framework):
    """QUARK 3: a module's ``Sleep`` pickles the rest of the tree; ``quark --resume-dir`` goes on."""

    name = "QUARK 3"

    def write_config(self, numbers: list[int], devices: list[str] | None = None) -> Path:
        apps = [{"bench_app": {"index": number}} for number in numbers]
        if devices is None:
            pipeline: list[Any] = [apps, "bench_device"]
        else:
            pipeline = [apps, "bench_mid", [{"bench_device": {"label": label}} for label in devices]]
        path = self.root / "config.yml"
        path.write_text(yaml.safe_dump({"plugins": [PLUGIN], "pipeline": pipeline}, sort_keys=False))
        return path

    def start(self, config: Path) -> tuple[Path, float, int]:
        seconds, process = run([str(QUARK3), "--config", str(config)], self.root, self.env)
        expect_exit(process, {0}, "QUARK 3 (new run)")
        runs = sorted((self.root / "benchmark_runs").iterdir())
        if len(runs) != 1 or not (runs[0] / QUARK3_PICKLE).is_file():
            raise BenchError(f"QUARK 3 left {len(runs)} run(s) under {self.root}, expected one interrupted run")
        run_dir = self.root / "interrupted"
        runs[0].rename(run_dir)
        return run_dir, seconds, process.returncode

    def resume_command(self, run_dir: Path) -> list[str]:
        return [str(QUARK3), "--resume-dir", str(run_dir)]

    def outcome(self, run_dir: Path) -> dict[str, Any]:
        finished: dict[int, Any] = {}
        labels: list[str] = []
        for path in sorted(run_dir.glob("pipelines/*/results.json")):
            steps = {step["module_info"]["name"]: step for step in json.loads(path.read_text())["steps"]}
            if "bench_app" in steps:
                app = steps["bench_app"]
                finished[app["module_info"]["params"]["index"]] = app["additional_metrics"].get("squared")
            if "bench_device" in steps:
                labels.append(steps["bench_device"]["module_info"]["params"].get("label", ""))
        failed = [
            json.loads(path.read_text())["reason"] for path in sorted(run_dir.glob("failed_pipelines/*/results.json"))
        ]
        return {
            "finished": finished,
            "finished_pipelines": sorted(p.parent.name for p in run_dir.glob("pipelines/*/results.json")),
            "labels": sorted(labels),
            "failed": failed,
            "waiting": int((run_dir / QUARK3_PICKLE).is_file()),
        }

    def saved_tree_nodes(self, run_dir: Path) -> int:
        """How many modules the pickled rest-of-run still holds (read with QUARK 3's own Python)."""
        script = (
            "import pickle, sys; state = pickle.load(open(sys.argv[1], 'rb')); "
            "print(sum(1 + len(tree.descendants) for tree in state.pipeline_trees))"
        )
        _, process = run([str(QUARK3_PYTHON), "-c", script, str(run_dir / QUARK3_PICKLE)], self.root, self.env)
        expect_exit(process, {0}, "reading QUARK 3's saved state")
        return int(process.stdout.strip())


def check_all_squared(outcome: dict[str, Any], numbers: list[int], what: str) -> None:
    wrong = [n for n in numbers if outcome["finished"].get(n) != n * n]
    if wrong or outcome["failed"] or outcome["waiting"]:
        raise BenchError(
            f"{what}: {len(wrong)} of {len(numbers)} pipelines without their result, "
            f"{len(outcome['failed'])} failed, waiting={outcome['waiting']}"
        )


def measure_resume(work: Path, jobs: int, repeat: int) -> dict[str, Any]:
    """Interrupt the same N-job pipeline ``repeat`` times in each framework, finish the jobs, and time
    the resume of each interrupted run, as a user resumes the run its first run left (a copy would
    not be that run: quark-cli reads every file of a run whose files changed after its index)."""
    numbers = list(range(jobs))
    kinds = (QuarkCli, Quark3)
    figures: dict[str, dict[str, Any]] = {kind.name: {"interrupt_runs_s": [], "resume_runs_s": []} for kind in kinds}
    interrupted: list[tuple[_Framework, Path]] = []
    for repetition in range(repeat):  # interleaved, so that a slow moment of the machine hits both
        for kind in kinds:
            framework = kind(work / f"{kind.name.replace(' ', '')}-{repetition}")
            config = framework.write_config(numbers)
            settle_disk()
            run_dir, seconds, code = framework.start(config)
            figures[framework.name]["interrupt_runs_s"].append(round(seconds, 3))
            figures[framework.name]["interrupt_exit"] = code
            interrupted.append((framework, run_dir))
    for framework, run_dir in interrupted:
        outcome = framework.outcome(run_dir)
        if outcome["finished"] or not outcome["waiting"]:
            raise BenchError(f"{framework.name}: the first run did not stop at the jobs")
        finished_jobs = service.finish(framework.service)
        if finished_jobs != jobs:
            raise BenchError(f"{framework.name} submitted {finished_jobs} jobs, expected {jobs}")
    for figure in figures.values():
        figure["interrupt_s"] = round(statistics.median(figure["interrupt_runs_s"]), 3)
    for framework, run_dir in interrupted:
        settle_disk()
        seconds, process = run(framework.resume_command(run_dir), framework.root, framework.env)
        expect_exit(process, {0}, f"{framework.name} resume")
        check_all_squared(framework.outcome(run_dir), numbers, f"{framework.name} resume")
        figures[framework.name]["resume_runs_s"].append(round(seconds, 3))
        figures[framework.name]["resume_exit"] = process.returncode
    for figure in figures.values():
        figure["resume_s"] = round(statistics.median(figure["resume_runs_s"]), 3)
    return figures


def branch_check(work: Path) -> dict[str, Any]:
    """app -> mid -> devices a, b; job a finishes, resume; job b finishes, resume: what is collected, exit codes."""
    observed: dict[str, Any] = {}
    for framework in (QuarkCli(work / "branch-quark-cli"), Quark3(work / "branch-quark3")):
        run_dir, _, first_exit = framework.start(framework.write_config([3], devices=["a", "b"]))
        exits = [first_exit]
        entry: dict[str, Any] = {}
        if isinstance(framework, Quark3):
            entry["saved_modules_after_first_run"] = framework.saved_tree_nodes(run_dir)
        for label in ("a", "b"):
            service.finish(framework.service, {label})
            _, process = run(framework.resume_command(run_dir), framework.root, framework.env)
            exits.append(process.returncode)
            if isinstance(framework, Quark3) and label == "a":
                waiting = (run_dir / QUARK3_PICKLE).is_file()
                entry["saved_modules_after_job_a"] = framework.saved_tree_nodes(run_dir) if waiting else 0
            if isinstance(framework, Quark3) and label == "b":
                entry["device_calls_after_job_b"] = process.stderr.count(
                    "Running preprocess for module ModuleInfo(name='bench_device'"
                )
        outcome = framework.outcome(run_dir)
        entry.update(
            exit_codes={"first_run": exits[0], "after_job_a": exits[1], "after_job_b": exits[2]},
            collected_device_labels=outcome["labels"],
            finished_pipelines=outcome["finished_pipelines"],
            failed=outcome["failed"],
            still_waiting=bool(outcome["waiting"]),
        )
        entry["dropped_jobs"] = sorted({"a", "b"} - set(outcome["labels"]))
        observed[framework.name] = entry
    return observed


def quark3_version() -> str:
    script = "import importlib.metadata as m, platform; print(m.version('quark-framework'), platform.python_version())"
    process = subprocess.run([str(QUARK3_PYTHON), "-c", script], capture_output=True, text=True, check=True)
    return process.stdout.strip()


def git_commit() -> str | None:
    process = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    return process.stdout.strip() or None


def print_table(entry: dict[str, Any]) -> None:
    cli, q3 = entry["quark_cli"], entry["quark3"]
    print(
        f"\nResume of {entry['jobs']} interrupted app -> async-device pipelines, all jobs done; "
        f"median of {entry['repetitions']} runs, wall time of the command"
    )
    print(f"{'':28}{'quark-cli ' + cli['version']:>20}{'QUARK 3 ' + q3['version']:>20}")
    print(f"{'resume command':28}{'quark collect':>20}{'quark --resume-dir':>20}")
    print(f"{'resume s (median)':28}{cli['resume_s']:>20.3f}{q3['resume_s']:>20.3f}")
    print(f"{'resume s (min..max)':28}{_spread(cli):>20}{_spread(q3):>20}")
    print(f"{'first run to interrupt, s':28}{cli['interrupt_s']:>20.3f}{q3['interrupt_s']:>20.3f}")
    print(f"{'first run s (min..max)':28}{_spread(cli, 'interrupt'):>20}{_spread(q3, 'interrupt'):>20}")
    print(f"{'exit: interrupted / done':28}{_exits(cli):>20}{_exits(q3):>20}")
    print(f"ratio QUARK 3 / quark-cli resume: {entry['ratio_quark3_over_quark_cli']:.2f}x (target >= 3.0)")
    print(f"ratio QUARK 3 / quark-cli first run: {entry['first_run_ratio_quark3_over_quark_cli']:.2f}x (target >= 1.0)")
    print(f"quark-cli resume: {floor_ratio(cli['resume_s'], 'collect', entry['jobs'])}")
    print(f"quark-cli first run: {floor_ratio(cli['interrupt_s'], 'submit', entry['jobs'])}")
    if q3.get("venv_setup_s") is not None:
        print(f"QUARK 3 venv setup (make bench-quark3): {q3['venv_setup_s']} s")
    print("\nTree branching below its root (app -> mid -> devices a, b); job a done, resume; job b done, resume:")
    for name, seen in entry["branch_check"].items():
        codes = seen["exit_codes"]
        print(
            f"  {name:10} exit codes {codes['first_run']}, {codes['after_job_a']}, {codes['after_job_b']}; "
            f"collected jobs {seen['collected_device_labels']}; dropped {seen['dropped_jobs']}; "
            f"failed {len(seen['failed'])}"
        )


def _spread(figure: dict[str, Any], what: str = "resume") -> str:
    return f"{min(figure[f'{what}_runs_s']):.3f}..{max(figure[f'{what}_runs_s']):.3f}"


def _exits(figure: dict[str, Any]) -> str:
    return f"{figure['interrupt_exit']} / {figure['resume_exit']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="pipelines, one job each (default 1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed resumes per framework (default 5)")
    parser.add_argument("--workdir", type=Path, help="keep the runs here instead of a temporary folder")
    args = parser.parse_args(argv)
    if not QUARK3.exists():
        print(f"error: {QUARK3} missing; create QUARK 3's virtualenv with 'make bench-quark3'", file=sys.stderr)
        return 2
    if args.jobs < 1 or args.repeat < 1:
        print("error: --jobs and --repeat must be at least 1", file=sys.stderr)
        return 2
    if args.workdir:
        args.workdir = args.workdir.resolve()  # the commands run in the frameworks' own folders
        if args.workdir.exists() and any(args.workdir.iterdir()):
            print(f"error: --workdir {args.workdir} is not empty; give a new or empty folder", file=sys.stderr)
            return 2
    compile_sources()
    compile_sources(QUARK3_PYTHON)  # the pipeline's modules, which QUARK 3 imports too
    with nullcontext(args.workdir) if args.workdir else work_dir("quark3-compare-") as work:
        work.mkdir(parents=True, exist_ok=True)
        try:
            figures = measure_resume(work, args.jobs, args.repeat)
            branch = branch_check(work)
        except (BenchError, subprocess.TimeoutExpired) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    version, python = quark3_version().split()
    setup = QUARK3_SETUP_FILE.read_text().strip() if QUARK3_SETUP_FILE.exists() else None
    cli, q3 = figures["quark-cli"], figures["QUARK 3"]
    entry = {
        "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "jobs": args.jobs,
        "repetitions": args.repeat,
        "pipeline": "application -> async device, one job per pipeline; every job done before the resume",
        "job_service": "bench/quark3_pipeline/service.py: one JSON file per job, the same for both",
        "quark_cli": {"version": quark_cli_version, "python": platform.python_version(), **cli},
        "quark3": {
            "package": "quark-framework",
            "version": version,
            "python": python,
            "venv_setup_s": float(setup) if setup else None,
            **q3,
        },
        "ratio_quark3_over_quark_cli": round(q3["resume_s"] / cli["resume_s"], 2),
        "first_run_ratio_quark3_over_quark_cli": round(q3["interrupt_s"] / cli["interrupt_s"], 2),
        "branch_check": branch,
    }
    print_table(entry)
    save(RESULTS_KEY, entry)
    print(f"\nwritten to bench/results.json under '{RESULTS_KEY}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
