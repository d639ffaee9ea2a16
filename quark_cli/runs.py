"""What each command does to a run, as functions a notebook can call too; the CLI only prints.

Every function that changes a run takes the run's lock first and rebuilds ``results.json`` before it
returns. Reading a run (``quark status``, ``quark runs``) is ``quark_cli.run_views``: no lock, no write.
"""

from __future__ import annotations

import hashlib
import logging
import logging.handlers
import os
import socket
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from quark_cli import __version__
from quark_cli.cancelling import Cancellation
from quark_cli.config import (
    BenchmarkConfig,
    build_config,
    config_hash,
    load_config,
    parse_config_text,
    read_config_text,
)
from quark_cli.defaults import POLL_WORKERS, SUBMIT_WORKERS
from quark_cli.engine import BenchmarkManager
from quark_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PENDING,
    ConfigError,
    QuarkError,
    RunDirError,
)
from quark_cli.launcher import hash_seed
from quark_cli.quark2 import read_module_file
from quark_cli.run_log import command_log
from quark_cli.stamps import now_iso
from quark_cli.state import (
    CONFIG_FILE,
    MAX_NAME_BYTES,
    SCHEMA_VERSION,
    RunDir,
    file_name,
)
from quark_cli.summary import Summary
from quark_cli.walk import FAILED, FINISHED, INTERRUPTED


class ProgressListener(Protocol):
    """Told what a run or a wait is doing, e.g. to draw a progress display (``quark_cli.progress``)."""

    def begin(self, total: int, statuses: dict[str, str]) -> None: ...

    def phase(self, stack: str, module: str, phase: str) -> None: ...

    def stack(self, stack: str, status: str) -> None: ...

    def passed(self, summary: Summary) -> None: ...


@dataclass
class Outcome:
    """A command's result for one run: the run, what the engine reported and the exit code."""

    run: RunDir
    summary: Summary
    #: What the config check noticed without refusing (values QUARK 2 modules take unchecked).
    warnings: list[str] = field(default_factory=list)

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
    name = file_name(config_path.stem)
    candidate = root / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{name}-{stamp}-{suffix}"
    return candidate


def start(
    config_path: Path,
    out: Path | None,
    sequential: bool,
    wait_timeout: float | None = None,
    progress: ProgressListener | None = None,
    modules_file: Path | None = None,
    failfast: bool = False,
    submit_workers: int = SUBMIT_WORKERS,
) -> Outcome:
    """``quark run`` (sequential) and ``quark submit``: make a run directory and walk every stack.

    ``modules_file`` is a QUARK 2 module file (``-m/--modules``) that config names resolve against;
    its entries are saved in the run (``modules.json``) for later commands. ``failfast`` stops at the
    first failed stack (QUARK 2's ``--failfast``); ``submit_workers`` stacks are walked at once by a
    submit (``quark_cli.submitting``). Raises ConfigError / RunDirError (exit 2) before
    anything is written when the config or module file is bad.
    """
    entries = read_module_file(modules_file) if modules_file else None
    config_text = read_config_text(config_path)  # once: a pipe (``<(...)``) gives its content once
    config = load_config(config_path, module_entries=entries, text=config_text)
    path = Path(out) if out else new_run_path(Path(config_path))
    modules_source = str(Path(modules_file).resolve()) if modules_file else None
    run = RunDir.create(
        path,
        config_text,
        {
            "quark_cli_version": __version__,
            "created": now_iso(),
            "config_source": str(Path(config_path).resolve()),
            "config_hash": config.config_hash,
            "config_sha256": _sha256(config_text),
            "module_search_path": config.search_path,
            "import_paths": config.import_paths,
            "backlog_order": config.backlog_order,
            "python_hash_seed": hash_seed() or "random",
            "yaml_rules": "1.2",
            "stacks": len(config.backlog) * config.repetitions,
            "host": socket.gethostname(),
        },
        modules=None if entries is None else {"source": modules_source, "modules": entries},
    )
    command = "run" if sequential else "submit"
    with run.lock(), command_log(run, command):
        for warning in config.warnings:
            logging.getLogger("quark_cli").warning("%s", warning)
        run.write_parsed_config(config.raw)
        manager = BenchmarkManager(
            run,
            config,
            wait_timeout=wait_timeout,
            on_phase=progress.phase if progress else None,
            submit_workers=submit_workers,
        )
        if progress:
            progress.begin(len(config.backlog) * config.repetitions, {})
        try:
            summary = manager.start(sequential, on_stack=progress.stack if progress else None, failfast=failfast)
        except QuarkError as error:
            run.add_history(command, {"error": str(error)})
            error.args = (f"{error} (run {run.path} is kept: fix this, then 'quark collect {run.path}' goes on)",)
            raise
        run.add_history(command, _counts(summary))
    return Outcome(run, summary, config.warnings)


@contextmanager
def refusing_damage(run: RunDir, manager: BenchmarkManager | None = None):
    """Check a locked run, reading only, before a command writes its first byte (log line included).

    A damaged or hand-broken run is refused with a message naming the file and field, and left
    exactly as it was. A sound one is cleared of the temporary files of writes a kill interrupted.
    What the check read is kept by ``manager`` for its next collect.
    """
    manager = manager or BenchmarkManager(run, load_run_config(run))
    manager.check()
    if run.index_current(run.read_index_detail()):  # no command was killed since: no job folder holds one
        run.remove_temp_files(set(), records=False)
    else:
        run.remove_temp_files(manager._checked[0] if manager._checked else None)
    yield


def load_run_config(run: RunDir) -> BenchmarkConfig:
    """The run's own config.yml, refused if it no longer matches the hash recorded at submit.

    While config.yml is byte for byte what was submitted, its parsed form is read from
    ``config.json`` (JSON parses far faster than YAML; collect runs every few minutes). Module names
    resolve against the run's ``modules.json`` (if it was made with ``--modules``), the folders its
    modules were imported from go on ``sys.path``, and items keep the numbering the run was made with
    (runs of quark-cli 0.1.0 have theirs). A config.yml re-read as YAML is read by the rules the run
    was made with (``yaml_rules``; YAML 1.1 for runs made before it was recorded).
    """
    info = run.read_run()
    source = str(run.path / CONFIG_FILE)
    text = run.config_text()
    raw = run.read_parsed_config() if info.get("config_sha256") == _sha256(text) else None
    if raw is None or config_hash(raw) != info.get("config_hash"):
        raw = parse_config_text(text, source, info.get("yaml_rules", "1.1")).raw
    folders = info.get("import_paths") or []
    sys.path.extend(folder for folder in folders if folder not in sys.path and os.path.isdir(folder))
    try:
        config = build_config(
            raw,
            source,
            info.get("module_search_path"),
            module_entries=run.read_modules(),
            backlog_order=info.get("backlog_order", "legacy"),
        )
    except ConfigError as error:
        gone = [folder for folder in folders if not os.path.isdir(folder)]
        if gone:
            error.args = (f"{error} (the run's modules were imported from {gone[0]}, which is gone)",)
        raise
    if config.config_hash != info.get("config_hash"):
        raise RunDirError(
            f"{source}: changed since the run was made (hash {config.config_hash[:12]} != "
            f"{str(info.get('config_hash'))[:12]}); restore it, or submit the new config as a new run"
        )
    return config


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def collect(
    path: Path,
    wait: bool = False,
    timeout: float | None = None,
    retry_failed: bool = False,
    resubmit_uncertain: bool = False,
    wait_lock: float = 0.0,
    progress: ProgressListener | None = None,
    poll_workers: int = POLL_WORKERS,
) -> Outcome:
    """``quark collect``: poll the run's pending jobs and continue the stacks that can go on."""
    run = RunDir.open(path)
    check_hash_seed(run)
    with run.lock(wait_lock):
        run.start_edit_scan()  # as early as may be: it runs while the config and the index are read
        run.read_ahead_for_collect()
        config = load_run_config(run)
        manager = BenchmarkManager(
            run, config, wait_timeout=timeout, poll_workers=poll_workers, on_phase=progress.phase if progress else None
        )
        with refusing_damage(run, manager), command_log(run, "collect"):
            summary = _collect_locked(run, manager, wait, timeout, retry_failed, resubmit_uncertain, progress)
    return Outcome(run, summary)


def check_hash_seed(run: RunDir) -> None:
    """Refuse to continue a run in a process whose string-hash seed differs from the run's.

    Modules above an async point are rebuilt by collect; with another seed, a module that numbers
    things in set order would read a job's result under other numbers (see ``quark_cli.launcher``).
    Runs made with a random seed (through the Python API) are not checked: nothing could match them.
    """
    recorded = run.read_run().get("python_hash_seed")
    if recorded and recorded.isdigit() and recorded != hash_seed():
        raise QuarkError(
            f"{run.path}: made with PYTHONHASHSEED={recorded} and this process has "
            f"{'PYTHONHASHSEED=' + hash_seed() if hash_seed() else 'a random one'}: its modules would not be "
            f"rebuilt the same; collect it with 'PYTHONHASHSEED={recorded} quark collect {run.path}'"
        )


def _collect_locked(
    run: RunDir,
    manager: BenchmarkManager,
    wait: bool,
    timeout: float | None,
    retry_failed: bool,
    resubmit_uncertain: bool,
    progress: ProgressListener | None,
) -> Summary:
    """collect's work once the run is locked and checked."""
    if not wait:
        summary = manager.collect(retry_failed=retry_failed, resubmit_uncertain=resubmit_uncertain)
    else:
        if progress:
            progress.begin(len(manager.config.backlog) * manager.config.repetitions, run.read_index())
        summary = manager.wait(
            timeout,
            retry_failed=retry_failed,
            resubmit_uncertain=resubmit_uncertain,
            on_pass=progress.passed if progress else None,
            on_stack=progress.stack if progress else None,
        )
    if summary.changed or summary.errors or summary.uncertain:  # a collect that found nothing leaves no trace
        run.add_history("collect", _counts(summary))
    return summary


def _counts(summary: Summary) -> dict[str, Any]:
    counts = Counter(summary.stacks.values())
    return {"finished": counts[FINISHED], "interrupted": counts[INTERRUPTED], "failed": counts[FAILED]}


@dataclass
class CancelOutcome:
    """``quark cancel``'s result: what the engine did and the exit code it means."""

    run: RunDir
    result: Cancellation

    @property
    def exit_code(self) -> int:
        """0 all asked-for jobs cancelled (or none pending); 2 a backend cannot cancel or refused us; 1 else."""
        if any(isinstance(error, QuarkError) for error in self.result.errors.values()):
            return EXIT_BAD_INPUT
        return EXIT_FAILED if self.result.errors else EXIT_OK


def cancel(path: Path, keys: list[str] | None = None, wait_lock: float = 0.0, forget: bool = False) -> CancelOutcome:
    """``quark cancel``: stop pending jobs on their services and record them CANCELLED (stacks FAILED).

    ``forget`` (``--forget``, which needs ``keys``): record them CANCELLED without asking the service.
    """
    if forget and not keys:
        raise QuarkError("--forget abandons the jobs you name: give their keys ('quark status' lists them)")
    run = RunDir.open(path)
    with run.lock(wait_lock), command_log(run, "cancel"):
        config = load_run_config(run)  # also imports the config's modules, whose job managers cancel() needs
        result = BenchmarkManager(run, config).cancel(keys or None, forget=forget)
        if result.cancelled or result.errors or result.summary.changed:  # a cancel that found nothing leaves no trace
            run.add_history("cancel", {"cancelled": len(result.cancelled), "errors": len(result.errors)})
    return CancelOutcome(run, result)


#: Tags of ``_hashable``'s stand-ins: objects no config value holds, so a stand-in equals only another of its kind.
_LIST, _MAP = object(), object()


def _hashable(value: Any) -> Any:
    """A hashable stand-in of a config value that equals another's exactly when the run would hand
    a module the same value: of the same types all through (``1``, ``1.0`` and ``true`` are three
    values, as are ``[1, 2]`` and ``[1.0, 2]``). TypeError for a value that is not YAML's."""
    if isinstance(value, (bool, int, float)):
        return (type(value), value)
    if isinstance(value, list):
        return (_LIST, tuple(map(_hashable, value)))
    if isinstance(value, dict):
        return (_MAP, frozenset((key, _hashable(item)) for key, item in value.items()))
    hash(value)
    return value


def validate(config_path: Path, modules_file: Path | None = None) -> dict[str, Any]:
    """``quark validate``: load and check a config like ``run`` would, and describe its backlog.

    Builds every module of every stack shape to check its parameters (no simulator is loaded and
    nothing is run); raises ConfigError naming the file and field on the first problem. Values a
    QUARK 2 module accepts unchecked are listed under ``warnings``.
    """
    entries = read_module_file(modules_file) if modules_file else None
    config = load_config(config_path, module_entries=entries)
    branches: dict[tuple[str, ...], dict[str, Any]] = {}
    # the values seen of each parameter of each branch (``_hashable``): a scan of 30,000 values that
    # compared each with the values listed before took 4.3 s
    seen: dict[tuple[tuple[str, ...], str], set[Any]] = {}
    for item in config.backlog:
        shape = tuple(item.module_names)
        branch = branches.setdefault(
            shape, {"modules": item.module_names, "backlog_items": 0, "parameters": {}, "job_folders": {}}
        )
        branch["backlog_items"] += 1
        for level in item.levels:
            for name, value in level.config.items():
                parameter = f"{level.name}.{name}"
                values = branch["parameters"].setdefault(parameter, [])
                known = seen.setdefault((shape, parameter), set())
                key = _hashable(value)
                if key not in known:
                    known.add(key)
                    values.append(value)
    for branch in branches.values():  # module paths too long for a file name, and what their jobs' folders use
        for depth in range(1, len(branch["modules"]) + 1):
            path = ".".join(branch["modules"][:depth])
            if len(file_name(path, limit=len(path))) > MAX_NAME_BYTES:
                branch["job_folders"][path] = f"<stack>-{file_name(path)}-<phase>"
    return {
        "schema_version": SCHEMA_VERSION,
        "config": str(config_path),
        "valid": True,
        "config_hash": config.config_hash,
        "repetitions": config.repetitions,
        "backlog_items": len(config.backlog),
        "stacks": len(config.backlog) * config.repetitions,
        "branches": list(branches.values()),
        "warnings": config.warnings,
    }
