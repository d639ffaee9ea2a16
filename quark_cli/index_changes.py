"""What changed in a run's index since it was last written whole: ``index_changes.json``.

At 100,000 stacks, rewriting the index's files (about 100 MB) at the end of a collect that changed
100 stacks took 0.3 s; their changes are a few kB. So ``RunIndex.write_index``
writes the changes since the whole index, until they name ``LIMIT`` stacks and jobs (or a twentieth
of the run's jobs, if more), and then the whole index again. Readers apply them to what they parse.

The changes are a JSON object with a part for each of the index's dicts (``PARTS``): the stacks'
statuses, the failed stacks' errors, the job summaries and the open jobs whole, each by key, where
null stands for a key removed. A changed job is in both ``jobs`` and ``open_jobs``: null in
``open_jobs`` if it is final (its summary then belongs with the final jobs') or removed. They name
the generation of the whole index they apply to (``base``) and their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CHANGES_FILE = "index_changes.json"
#: Stacks plus jobs named in the changes at which the whole index is written again (or a twentieth
#: of the run's jobs, if more): each command reads and writes them all.
LIMIT = 2000
PARTS = ("stacks", "errors", "jobs", "open_jobs")
#: The types of a job summary's fields as the index has them: text, a number or null.
PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))


def empty() -> dict[str, dict[str, Any]]:
    """No changes: the whole index as written."""
    return {part: {} for part in PARTS}


def merged(
    changes: dict[str, dict[str, Any]],
    before: dict[str, Any],
    stacks: dict[str, str],
    errors: dict[str, str],
    changed_jobs: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]],
) -> dict[str, dict[str, Any]]:
    """``changes`` (those ``before`` was read with) and this command's: the stacks and errors that
    differ from ``before`` (the index as read: ``stacks`` and ``errors`` by key), and the jobs of
    ``changed_jobs``: ``(summary, whole job if not final)`` by key, ``(None, None)`` if removed.
    A new dict; none of the arguments is changed."""
    new = {part: dict(changes[part]) for part in PARTS}
    # the statuses differ where the (key, status) pairs do: a set difference in C (a loop over
    # 100,000 stacks took 0.07 s); the errors, few, by a loop
    new["stacks"].update(sorted(stacks.items() - before["stacks"].items()))
    old = before["errors"]
    new["errors"].update((key, value) for key, value in errors.items() if old.get(key) != value)
    for part, now in (("stacks", stacks), ("errors", errors)):
        new[part].update((key, None) for key in sorted(before[part].keys() - now.keys()))
    for key, (summary, whole) in changed_jobs.items():
        new["jobs"][key] = summary
        new["open_jobs"][key] = whole
    return new


def too_many(changes: dict[str, dict[str, Any]], jobs: int) -> bool:
    """True once the changes name more stacks and jobs than ``LIMIT`` (or than a twentieth of
    ``jobs``, the run's job count, if more): time to write the whole index again."""
    return len(changes["stacks"]) + len(changes["jobs"]) > max(LIMIT, jobs // 20)


def apply(index: dict[str, Any], changes: dict[str, dict[str, Any]]) -> None:
    """Change ``index`` (its ``stacks``, ``errors`` and ``final_jobs`` summaries) in place as
    ``changes`` say."""
    _apply_part(index["stacks"], changes["stacks"])
    _apply_part(index["errors"], changes["errors"])
    opened = changes["open_jobs"]
    _apply_part(index["final_jobs"], {key: None if opened[key] else job for key, job in changes["jobs"].items()})


def apply_open(open_jobs: dict[str, dict[str, Any]], changes: dict[str, dict[str, Any]]) -> None:
    """Change ``open_jobs`` (whole jobs by key) in place as ``changes`` say."""
    _apply_part(open_jobs, changes["open_jobs"])


def apply_open_summaries(summaries: dict[str, dict[str, Any]], changes: dict[str, dict[str, Any]]) -> None:
    """Change ``summaries`` (of the open jobs, by key) in place as ``changes`` say."""
    opened = changes["open_jobs"]
    _apply_part(summaries, {key: job if opened[key] else None for key, job in changes["jobs"].items()})


def _apply_part(values: dict[str, Any], changed: dict[str, Any]) -> None:
    for key, value in changed.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value


def plain_summaries(summaries: Iterable[Any]) -> bool:
    """True if each of ``summaries`` is a dict of plain values (``PLAIN_TYPES``), as job summaries
    are written: a loop in C, 1,100,000 fields at 100,000 stacks."""
    plain = PLAIN_TYPES.issuperset
    return all(type(job) is dict and plain(map(type, job.values())) for job in summaries)


def parsed(value: Any) -> dict[str, dict[str, Any]] | None:
    """The parts of a changes file's JSON ``value``, or None unless each has the shapes written:
    statuses and errors text, job summaries dicts of plain values, open jobs dicts of their key
    (each or null)."""
    if not isinstance(value, dict):
        return None
    changes = {part: value.get(part) for part in PARTS}
    if not all(isinstance(part, dict) for part in changes.values()):
        return None
    if not all(status is None or isinstance(status, str) for status in changes["stacks"].values()):
        return None
    if not all(error is None or isinstance(error, str) for error in changes["errors"].values()):
        return None
    if not plain_summaries(job for job in changes["jobs"].values() if job is not None):
        return None
    whole = changes["open_jobs"].items()
    if not all(job is None or (isinstance(job, dict) and job.get("key") == key) for key, job in whole):
        return None
    if changes["jobs"].keys() != changes["open_jobs"].keys():
        return None
    return changes
