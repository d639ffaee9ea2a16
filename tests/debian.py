"""Debian packages that some tests need (libfaketime, chromium): installed on demand, or the test skips.

A root Debian machine (CI) installs a missing package with apt-get, updating the package lists only
when the first try fails. Elsewhere the test is skipped; under ``CI=true`` it fails instead, so CI
can never pass without running it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import pytest


def needed_package(package: str, find: Callable[[], str | None], purpose: str, timeout: float = 900) -> str:
    """What ``find()`` returns (a path), after ``apt-get install package`` when it returned None.

    ``purpose`` names the tests in the skip or failure message ("the clock tests"); ``timeout`` bounds
    each apt-get call, in seconds.
    """
    found = find()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
        if subprocess.run(command, capture_output=True, env=env, timeout=timeout).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
            subprocess.run(command, capture_output=True, env=env, timeout=timeout)
        found = find()
    if found is None:
        reason = f"{package} is not installed and cannot be (needs root and apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run {purpose}, but {reason}")
        pytest.skip(reason)
    return found
