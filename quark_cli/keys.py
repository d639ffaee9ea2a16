"""The names of stacks and jobs: ``003-r1`` (backlog item 3, repetition 1) and the jobs of it."""

from __future__ import annotations


def stack_key(item: int, repetition: int) -> str:
    """``003-r1``: backlog item and repetition, sortable by name."""
    return f"{item:03d}-r{repetition}"


def stack_of(job_key: str) -> str:
    """The stack of a job key: ``003-r1`` of ``003-r1-MaxCut.QAOA.LocalAsyncSampler-pre``."""
    return "-".join(job_key.split("-", 2)[:2])
