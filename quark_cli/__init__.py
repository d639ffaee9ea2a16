"""quark-cli: QUARK-style benchmarks whose jobs can wait in a remote queue while nothing runs.

The public API is importable from here so that a user module needs one import line. Importing this
package loads neither myQLM nor the QLMaaS client.
"""

from quark_cli.async_core import AsyncCore
from quark_cli.core import Core, Instruction, Metrics
from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, JobContext

__version__ = "0.1.0"

__all__ = ["AsyncCore", "AsyncJobManager", "AsyncStatus", "Core", "Instruction", "JobContext", "Metrics", "__version__"]
