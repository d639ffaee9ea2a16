"""The ``quark`` entry point: runs module code under one fixed string-hash seed, then the CLI.

Python salts ``hash()`` of strings per process (``PYTHONHASHSEED``), so the iteration order of sets
and of dicts filled from them changes between processes. A module above an asynchronous job is
rebuilt by ``collect`` in a new process: if it numbers things in such an order (QUARK 2's
``QubovertQUBO`` numbers its QUBO variables so), the collect reads the job's result back under other
numbers. So the commands that run modules (``run``, ``submit``, ``collect``) re-execute themselves,
once and in the same process id, with ``PYTHONHASHSEED=0`` unless the user set a seed; every run
records the seed it was made with and ``collect`` checks it (``runs.check_hash_seed``).

Kept free of heavy imports: the check costs nothing for ``--help`` and the read-only commands.
"""

from __future__ import annotations

import os
import sys

#: The seed of every run made by ``quark`` when the user sets none.
DEFAULT_HASH_SEED = "0"
#: Commands whose module code must see the same hash seed in every process of a run.
MODULE_COMMANDS = {"run", "submit", "collect"}


def hash_seed() -> str | None:
    """This process's string-hash seed (``PYTHONHASHSEED`` as a decimal string), or None when random."""
    value = os.environ.get("PYTHONHASHSEED", "")
    return value if value.isdigit() else None


def _command(arguments: list[str]) -> str | None:
    """The subcommand of ``quark [global options] COMMAND ...`` (global options take no values)."""
    for argument in arguments:
        if not argument.startswith("-"):
            return argument
    return None


def main() -> None:
    """Console-script entry point: re-execute under a fixed hash seed when needed, then run the CLI."""
    if _command(sys.argv[1:]) in MODULE_COMMANDS and hash_seed() is None and sys.orig_argv:
        environment = {**os.environ, "PYTHONHASHSEED": DEFAULT_HASH_SEED}
        try:
            os.execve(sys.executable, sys.orig_argv, environment)
        except OSError:
            pass  # no re-execution possible (a frozen or embedded interpreter): run with the salt we have
    from quark_cli import interrupts

    interrupts.install()  # before the CLI's imports: a Ctrl-C there gets quark's line, not a traceback
    from quark_cli.cli import main as cli_main

    cli_main()
