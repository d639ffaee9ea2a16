"""Reading a run without its lock: what is pending, done and failed (``quark status``), stack
totals, and the runs under a folder (``quark runs``). Nothing here writes."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from quark_cli.errors import QuarkError, RunDirError, describe_os_error, describe_path_error
from quark_cli.run_index import job_summary
from quark_cli.stamps import age_seconds
from quark_cli.state import RUN_FILE, SCHEMA_VERSION, RunDir
from quark_cli.walk import FAILED, FINISHED, INTERRUPTED, awaited_jobs

NOT_STARTED = "NOT_STARTED"


#: How deep below ROOT ``collect --all`` and ``runs`` look for run directories.
MAX_RUN_DEPTH = 8


#: What a run directory that lost its run.json still holds: it is listed as damaged, never skipped.
RUN_MARKS = {"results.json", "records", "jobs", "index.json"}


def find_runs(root: Path) -> list[Path]:
    """Run directories at ``root`` or up to ``MAX_RUN_DEPTH`` levels below it, symbolic links not followed.

    A folder that cannot be looked into, or that holds a run's files without its ``run.json``, is
    listed too: the command that reads it says why it cannot (a cron sweep must not skip a run without
    a word). A run's own folders (thousands of jobs) are not searched. Raises RunDirError when
    ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        what = "a file, not a folder of runs" if root.exists() else "no such directory"
        raise RunDirError(f"{root}: {what}")
    found: set[Path] = set()
    folders = [(root, 0)]
    while folders:
        folder, depth = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            found.add(folder)
            continue
        names = {entry.name for entry in entries}
        if RUN_FILE in names or len(names & RUN_MARKS) >= 2:
            found.add(folder)
            continue
        if depth < MAX_RUN_DEPTH:
            folders.extend((Path(entry.path), depth + 1) for entry in entries if entry.is_dir(follow_symlinks=False))
    return sorted(found)


def status(path: Path) -> dict[str, Any]:
    """What is pending, done and failed in a run, read from disk only (no service is asked).

    Closed stacks and their jobs come from the index, the others from their own files
    (``_stack_states``).
    """
    run = RunDir.open(path)
    info = run.read_run()
    run.start_edit_scan()  # beside the index parse and the report: ``_stack_states`` asks for it
    index, summaries = _read_index(run)
    edited = None
    if run.index_current(index):
        # the report as the index tells it is made while the scan for files edited since runs (at
        # 100,000 stacks the scan takes the longer); made again, from the files, if it finds any
        report = _report(run, info, summaries, *_stack_states(run, index, summaries, set()))
        edited = run.changed_since_index(summaries.keys())
        if not edited:
            return report
        del report  # not two of them held at once
    return _report(run, info, summaries, *_stack_states(run, index, summaries, edited))


def _report(
    run: RunDir,
    info: dict[str, Any],
    summaries: dict[str, dict[str, Any]],
    states: dict[str, tuple[Any, Any]],
    fresh: set[str],
    named: dict[str, list[str]],
) -> dict[str, Any]:
    """``status``'s answer: ``_stack_states``'s, the index's job ``summaries`` (those of the stacks
    in ``fresh`` read from their files instead) and ``info`` (run.json)."""
    stacks = []
    problems = _missing_jobs(run, named)
    for key, (state, error) in sorted(states.items()):
        item, _, repetition = key.partition("-r")
        stacks.append(
            {"stack": key, "backlog_item": int(item), "repetition": int(repetition), "status": state, "error": error}
        )
    total = int(info.get("stacks", len(stacks)))
    stack_counts = Counter(s["status"] for s in stacks)
    stack_counts[NOT_STARTED] = max(0, total - len(stacks))
    jobs = [job for job in summaries.values() if job.get("stack") not in fresh]
    jobs += [job_summary(job) for job in run.jobs_of(fresh)]
    now = datetime.now(UTC)
    ages = {}  # by stamp: jobs submitted in the same millisecond share one
    for job in jobs:
        stamp = job.get("submitted_at")
        if stamp not in ages:
            ages[stamp] = _rounded(age_seconds(stamp, now))
    job_rows = [
        {
            "key": job["key"],
            "stack": job.get("stack"),
            "module": job.get("module_path"),
            "phase": job.get("phase"),
            "status": job.get("status"),
            "id": job.get("id"),
            "attempt": job.get("attempt") or 1,
            "submitted_at": job.get("submitted_at"),
            "age_seconds": ages[job.get("submitted_at")],
            "status_since": job.get("status_since"),
            "error": job.get("error"),
            "warning": job.get("warning"),
        }
        for job in sorted(jobs, key=itemgetter("key"))
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
        "unknown_ages": sum(1 for job in job_rows if job["submitted_at"] and job["age_seconds"] is None),
        "stacks": stacks,
        "jobs": job_rows,
        "problems": problems,
    }


def _missing_jobs(run: RunDir, named: dict[str, list[str]]) -> list[str]:
    """What ``collect`` will refuse: an unfinished stack whose record names a job that has no job file
    (deleted by hand). ``named``: the jobs named by the unfinished records read. One sentence each."""
    if not any(named.values()):
        return []
    present = set(run.job_keys(set(named)))
    return [
        f"{run.job_file(job_key)}: missing, yet {run.record_file(key)} names it; restore it "
        "('quark collect' refuses the run until then: it would submit the job again)"
        for key, job_keys in sorted(named.items())
        for job_key in job_keys
        if job_key not in present
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _read_index(run: RunDir) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run's index and the summaries of its jobs (``RunIndex.job_summaries``); an empty index,
    which tells nothing, if either cannot be used."""
    index = run.read_index_detail()
    summaries = run.job_summaries(index)
    if index is None or summaries is None:
        return {"stacks": {}, "errors": {}}, {}
    return index, summaries


def _stack_states(
    run: RunDir, index: dict[str, Any], summaries: dict[str, dict[str, Any]], edited: set[str] | None = None
) -> tuple[dict[str, tuple[Any, Any]], set[str], dict[str, list[str]]]:
    """Each started stack's ``(status, error)``, the stacks read from their own files, and the jobs
    their records await (``walk.awaited_jobs``, by stack).

    Closed stacks come from the index; open stacks, and any the index does not show as closed, from
    their records, so the answer is current even after a command was killed before the index. While
    the index is current, only the stacks whose files changed since are read: ``edited`` if given
    (``RunIndex.changed_since_index``), else as the files say now.
    """
    states: dict[str, tuple[Any, Any]] = {}
    named: dict[str, list[str]] = {}

    def read(key: str) -> None:
        record = run.read_record(key)
        if record is None:
            return
        states[key] = (record.get("quark_job_status", INTERRUPTED), record.get("error"))
        named[key] = awaited_jobs(record)

    if run.index_current(index):  # the last command ended and none changed the run since: all is in the index
        states.update((key, (status, index["errors"].get(key))) for key, status in index["stacks"].items())
        if edited is None:  # but for files changed by hand since, which are read
            edited = run.changed_since_index(summaries.keys())
        for key in sorted(edited):
            read(key)
        return states, edited, named
    run.drop_edit_scan()
    record_keys = run.record_keys()
    started = record_keys | run.job_stacks()  # a stack killed in its first submission has a job, no record
    fresh = run.open_stacks() | {key for key in started if index["stacks"].get(key) not in (FINISHED, FAILED)}
    for key in record_keys:
        if key in fresh:
            states[key] = (INTERRUPTED, None)  # a record that went between the listing and now
            read(key)
        else:
            states[key] = (index["stacks"][key], index["errors"].get(key))
    return states, fresh, named


def stack_totals(run: RunDir, info: dict[str, Any]) -> dict[str, int]:
    """Stacks by status without reading every record (see ``_stack_states``)."""
    counts = Counter(state for state, _ in _stack_states(run, *_read_index(run))[0].values())
    total = int(info.get("stacks", sum(counts.values())))
    return {
        "total": total,
        **{name: counts.get(name, 0) for name in (FINISHED, INTERRUPTED, FAILED)},
        NOT_STARTED: max(0, total - sum(counts.values())),
    }


def list_runs(root: Path) -> list[dict[str, Any]]:
    """``quark runs``: every run directory under ``root``, oldest first, with its stack counts.

    A damaged run is listed (last) with its error instead of stopping the listing.
    """
    listed = []
    for path in find_runs(root):
        entry: dict[str, Any] = {"run_dir": str(path), "name": str(path.relative_to(root)) if path != root else "."}
        try:
            run = RunDir.open(path)
            info = run.read_run()
            history = info.get("history") or []
            source = info.get("config_source")
            entry.update(
                created=info.get("created"),
                config=Path(source).name if source else None,
                config_source=source,
                stack_totals=stack_totals(run, info),
                last_command={k: history[-1].get(k) for k in ("command", "at")} if history else None,
                error=None,
            )
        except (QuarkError, OSError) as error:
            described = None
            if isinstance(error, OSError):  # the machine's or a path's fault, said in a line; else our bug
                described = describe_os_error(error) or describe_path_error(error)
                if not described:
                    raise
            entry.update(created=None, config=None, config_source=None, stack_totals=None, last_command=None)
            entry["error"] = described or str(error)
        listed.append(entry)
    return sorted(listed, key=lambda entry: (entry["created"] is None, entry["created"] or "", entry["run_dir"]))
