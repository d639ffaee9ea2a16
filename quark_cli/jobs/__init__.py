"""Job managers: the contract in ``base`` and one module per backend."""

from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, JobContext, JobFailedError

__all__ = ["AsyncJobManager", "AsyncStatus", "JobContext", "JobFailedError"]
