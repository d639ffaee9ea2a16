"""The names of stacks and jobs: ``003-r1`` (backlog item 3, repetition 1) and the jobs of it."""

from __future__ import annotations


def stack_key(item: int, repetition: int) -> str:
    """``003-r1``: backlog item and repetition, sortable by name."""
    return f"{item:03d}-r{repetition}"


def is_job_key(name: str) -> bool:
    """True for a name shaped as a job key, ``<item>-r<repetition>-<modules>-pre|post``: what a job
    file in ``jobs/`` is named by (a note a user left there is not)."""
    item, _, rest = name.partition("-r")
    repetition, _, modules = rest.partition("-")
    return item.isdigit() and repetition.isdigit() and modules.endswith(("-pre", "-post"))


def stack_of(job_key: str) -> str:
    """The stack of a job key: ``003-r1`` of ``003-r1-MaxCut.QAOA.LocalAsyncSampler-pre``."""
    return "-".join(job_key.split("-", 2)[:2])
