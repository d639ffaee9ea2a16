"""Start-up: ``quark --help`` against bare ``import typer, rich`` (target: at most 2.0x), and what it loads.

The figures come from new processes, as a user starts them, timed in the same run and interleaved
(one of each in turn, so a busy spell of the machine weighs on all three alike): ``quark --help``
through the installed console script and through ``python -m quark_cli.cli``, and
``python -c "import typer, rich"``, the floor of any typer CLI. Bytecode caching is on, as for a
user (an untimed first run of each writes the caches of files edited since; a process that compiles
``cli.py`` from source pays 8 ms more). ``sys.modules`` is then inspected after ``import quark_cli``,
``import quark_cli.cli`` and a whole ``quark --help`` for the heavy modules (myQLM's ``qat``, the
QLMaaS client, qiskit, numpy, scipy, matplotlib) and for those of typer's rich help rendering
(markdown-it, pygments: 30 ms that ``quark_cli.cli`` draws its help without).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import save, table

HEAVY = ("qat", "qlmaas", "qiskit", "qiskit_ibm_runtime", "numpy", "scipy", "matplotlib")
#: What typer's own help rendering (``typer.rich_utils``) loads, and ``quark --help`` does not.
RICH_HELP = ("markdown_it", "pygments")
RUNS = 11
TARGET_RATIO = 2.0
#: ``quark --help`` in this process, its output dropped, then what it loaded.
HELP_STATEMENT = (
    "import contextlib, io\n"
    "from quark_cli.launcher import main\n"
    "sys.argv = ['quark', '--help']\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        main()\n"
    "    except SystemExit:\n"
    "        pass"
)


def user_env() -> dict[str, str]:
    """The environment of the timed processes: this one's, with bytecode caching on as for a user."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def loaded_after(statement: str, packages: tuple[str, ...] = HEAVY) -> list[str]:
    """The ``packages`` of which a new process has loaded some module after ``statement``."""
    found = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r})"
    code = f"import sys, json\n{statement}\nprint(json.dumps({found}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=user_env())
    return json.loads(done.stdout.splitlines()[-1])


def interleaved_medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall time of each command over ``runs`` new processes, the commands taking turns."""
    env = user_env()
    for command in commands.values():  # untimed: writes the bytecode caches, warms the file cache
        subprocess.run(command, capture_output=True, check=True, env=env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, env=env)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(runs: int = RUNS) -> dict:
    quark = Path(sys.executable).with_name("quark")
    medians = interleaved_medians(
        {
            "script": [str(quark), "--help"],
            "module": [sys.executable, "-m", "quark_cli.cli", "--help"],
            "floor": [sys.executable, "-c", "import typer, rich"],
        },
        runs,
    )
    floor = medians["floor"]
    help_s, module_s = medians["script"], medians["module"]
    ratio, module_ratio = help_s / floor, module_s / floor
    imports = {
        "import quark_cli": loaded_after("import quark_cli"),
        "import quark_cli.cli": loaded_after("import quark_cli.cli"),
        "quark --help": loaded_after(HELP_STATEMENT),
    }
    rich_help = loaded_after(HELP_STATEMENT, RICH_HELP)
    figures = {
        "runs": runs,
        "help_median_s": round(help_s, 4),
        "help_module_median_s": round(module_s, 4),
        "import_typer_rich_median_s": round(floor, 4),
        "help_ratio": round(ratio, 2),
        "help_module_ratio": round(module_ratio, 2),
        "target_ratio": TARGET_RATIO,
        "heavy_modules_after_import": imports,
        "typer_rich_help_modules_after_help": rich_help,
    }
    target = f"<= {TARGET_RATIO:.1f}x"
    table(
        [
            ("what", "quark-cli", "baseline", "target"),
            (f"quark --help, console script (median of {runs})", f"{help_s:.3f} s", f"{floor:.3f} s", "-"),
            (f"python -m quark_cli.cli --help (median of {runs})", f"{module_s:.3f} s", f"{floor:.3f} s", "-"),
            ("  ratio to 'import typer, rich', console script", f"{ratio:.2f}x", "1.00x", target),
            ("  ratio to 'import typer, rich', python -m", f"{module_ratio:.2f}x", "1.00x", target),
            *(
                (f"heavy modules after '{what}'", str(modules or "none"), "-", "none")
                for what, modules in imports.items()
            ),
            ("markdown-it / pygments after 'quark --help'", str(rich_help or "none"), "-", "none"),
        ]
    )
    save("startup", figures)
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)
