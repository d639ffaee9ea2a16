"""What each command does to a run, as functions a notebook can call too; the CLI only prints.

Every function that changes a run takes the run's lock first and rebuilds ``results.json`` before it
returns; reading functions take no lock and never write.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from quark_cli import __version__
from quark_cli.config import BenchmarkConfig, build_config, load_config, parse_config_text
from quark_cli.engine import FAILED, FINISHED, INTERRUPTED, POLL_WORKERS, BenchmarkManager, Summary
from quark_cli.errors import EXIT_FAILED, EXIT_OK, EXIT_PENDING, QuarkError, RunDirError
from quark_cli.state import CONFIG_FILE, SCHEMA_VERSION, RunDir, age_seconds, now_iso

NOT_STARTED = "NOT_STARTED"


@dataclass
class Outcome:
    """A command's result for one run: the run, what the engine reported and the exit code."""

    run: RunDir
    summary: Summary

    @property
    def exit_code(self) -> int:
        if self.summary.count(FAILED):
            return EXIT_FAILED
        if self.summary.pending:
            return EXIT_PENDING
        return EXIT_OK


def default_runs_root() -> Path:
    """Where runs go without ``-o``: ``$QUARK_RUNS_DIR`` or ``~/quark-runs`` (what the cron line collects)."""
    return Path(os.environ.get("QUARK_RUNS_DIR") or Path.home() / "quark-runs")


def new_run_path(config_path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root = default_runs_root()
    candidate = root / f"{config_path.stem}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{config_path.stem}-{stamp}-{suffix}"
    return candidate


@contextmanager
def command_log(run: RunDir, command: str):
    """Send this command's log lines (with tracebacks of module errors) to the run's logging.log."""
    handler = logging.FileHandler(run.log_file(), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s"))
    logger = logging.getLogger("quark_cli")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("%s (quark-cli %s)", command, __version__)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def start(
    config_path: Path, out: Path | None, sequential: bool, wait_timeout: float | None = None, on_stack=None
) -> Outcome:
    """``quark run`` (sequential) and ``quark submit``: make a run directory and walk every stack."""
    config = load_config(config_path)
    path = Path(out) if out else new_run_path(Path(config_path))
    run = RunDir.create(
        path,
        Path(config_path).read_text(encoding="utf-8"),
        {
            "quark_cli_version": __version__,
            "created": now_iso(),
            "config_source": str(Path(config_path).resolve()),
            "config_hash": config.config_hash,
            "module_search_path": config.search_path,
            "stacks": len(config.backlog) * config.repetitions,
            "host": socket.gethostname(),
        },
    )
    command = "run" if sequential else "submit"
    with run.lock(), command_log(run, command):
        try:
            summary = BenchmarkManager(run, config, wait_timeout=wait_timeout).start(sequential, on_stack=on_stack)
        except QuarkError as error:
            run.add_history(command, {"error": str(error)})
            error.args = (f"{error} (run {run.path} is kept: fix this, then 'quark collect {run.path}' goes on)",)
            raise
        run.add_history(command, _counts(summary))
    return Outcome(run, summary)


@contextmanager
def refusing_damage(run: RunDir):
    """Check a locked run, reading only, before a command writes its first byte (log line included).

    A damaged or hand-broken run is refused with a message naming the file and field, and left
    exactly as it was.
    """
    BenchmarkManager(run, load_run_config(run)).check()
    yield


def load_run_config(run: RunDir) -> BenchmarkConfig:
    """The run's own config.yml, refused if it no longer matches the hash recorded at submit."""
    info = run.read_run()
    source = str(run.path / CONFIG_FILE)
    config = build_config(parse_config_text(run.config_text(), source), source, info.get("module_search_path"))
    if config.config_hash != info.get("config_hash"):
        raise RunDirError(
            f"{source}: changed since the run was made (hash {config.config_hash[:12]} != "
            f"{str(info.get('config_hash'))[:12]}); restore it, or submit the new config as a new run"
        )
    return config


def collect(
    path: Path,
    wait: bool = False,
    timeout: float | None = None,
    retry_failed: bool = False,
    resubmit_uncertain: bool = False,
    wait_lock: float = 0.0,
    on_pass=None,
    poll_workers: int = POLL_WORKERS,
) -> Outcome:
    """``quark collect``: poll the run's pending jobs and continue the stacks that can go on."""
    run = RunDir.open(path)
    with run.lock(wait_lock), refusing_damage(run), command_log(run, "collect"):
        config = load_run_config(run)
        manager = BenchmarkManager(run, config, wait_timeout=timeout, poll_workers=poll_workers)
        if wait:
            summary = manager.wait(timeout, retry_failed=retry_failed, on_pass=on_pass)
        else:
            summary = manager.collect(retry_failed=retry_failed, resubmit_uncertain=resubmit_uncertain)
        run.add_history("collect", _counts(summary))
    return Outcome(run, summary)


def find_runs(root: Path) -> list[Path]:
    """Run directories at ``root`` or up to two levels below it (e.g. ``~/quark-runs/<run>``)."""
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"{root}: no such directory")
    found = [p.parent for pattern in ("run.json", "*/run.json", "*/*/run.json") for p in root.glob(pattern)]
    return sorted(set(found))


def _counts(summary: Summary) -> dict[str, Any]:
    counts = Counter(summary.stacks.values())
    return {"finished": counts[FINISHED], "interrupted": counts[INTERRUPTED], "failed": counts[FAILED]}


def status(path: Path) -> dict[str, Any]:
    """What is pending, done and failed in a run, read from disk only (no service is asked)."""
    run = RunDir.open(path)
    info = run.read_run()
    records = run.read_records()
    jobs = run.read_jobs()
    total = int(info.get("stacks", len(records)))
    stacks = [
        {
            "stack": key,
            "backlog_item": record.get("benchmark_backlog_item_number"),
            "repetition": record.get("repetition"),
            "status": record.get("quark_job_status"),
            "error": record.get("error"),
        }
        for key, record in sorted(records.items())
    ]
    stack_counts = Counter(s["status"] for s in stacks)
    stack_counts[NOT_STARTED] = max(0, total - len(stacks))
    job_rows = [
        {
            "key": job["key"],
            "stack": job.get("stack"),
            "module": job.get("module_path"),
            "phase": job.get("phase"),
            "status": job.get("status"),
            "id": (job.get("info") or {}).get("id"),
            "attempt": job.get("attempt", 1),
            "submitted_at": job.get("submitted_at"),
            "age_seconds": _rounded(age_seconds(job.get("submitted_at"))),
            "status_since": job.get("status_since"),
            "error": job.get("error"),
        }
        for job in jobs
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run.path),
        "created": info.get("created"),
        "config_hash": info.get("config_hash"),
        "stack_totals": {
            "total": total,
            **{name: stack_counts.get(name, 0) for name in (FINISHED, INTERRUPTED, FAILED, NOT_STARTED)},
        },
        "job_totals": dict(sorted(Counter(job["status"] for job in job_rows).items())),
        "stacks": stacks,
        "jobs": job_rows,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
