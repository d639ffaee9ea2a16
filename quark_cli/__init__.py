"""quark-cli: QUARK-style benchmarks whose jobs can wait in a remote queue while nothing runs.

The public API is importable from here so that a user module needs one import line. Importing this
package loads neither myQLM nor the QLMaaS client, and loads the API's modules only when one of its
names is first used (PEP 562): ``quark --help`` and the launcher need none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quark_cli.async_core import AsyncCore
    from quark_cli.core import Core, Instruction, Metrics
    from quark_cli.jobs.base import AsyncJobManager, AsyncStatus, JobContext

__version__ = "0.1.0"

__all__ = ["AsyncCore", "AsyncJobManager", "AsyncStatus", "Core", "Instruction", "JobContext", "Metrics", "__version__"]

#: Each public name and the module that defines it, imported on first use.
_API = {
    "AsyncCore": "quark_cli.async_core",
    "Core": "quark_cli.core",
    "Instruction": "quark_cli.core",
    "Metrics": "quark_cli.core",
    "AsyncJobManager": "quark_cli.jobs.base",
    "AsyncStatus": "quark_cli.jobs.base",
    "JobContext": "quark_cli.jobs.base",
}


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
