"""Start-up: ``quark --help`` wall time (target: under 0.25 s) and what importing quark_cli loads.

The figures come from new processes, as a user starts them: ``quark --help`` through the installed
console script, and ``import quark_cli`` / ``import quark_cli.cli`` with ``sys.modules`` inspected
for myQLM (``qat``) and the QLMaaS client.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import median_of, save, table

HEAVY = ("qat", "qlmaas", "numpy", "scipy", "matplotlib")


def loaded_after(statement: str) -> list[str]:
    heavy = f"sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})"
    code = f"import sys, json\n{statement}\nprint(json.dumps({heavy}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> dict:
    quark = Path(sys.executable).with_name("quark")

    def help_once() -> float:
        start = time.perf_counter()
        subprocess.run([str(quark), "--help"], capture_output=True, check=True)
        return time.perf_counter() - start

    help_s = median_of(11, help_once)
    imports = {stmt: loaded_after(stmt) for stmt in ("import quark_cli", "import quark_cli.cli")}
    figures = {"help_median_s": round(help_s, 3), "heavy_modules_after_import": imports}
    table(
        [
            ("what", "quark-cli", "baseline", "target"),
            ("quark --help (median of 11)", f"{help_s:.3f} s", "-", "< 0.25 s"),
            ("heavy modules after 'import quark_cli'", str(imports["import quark_cli"] or "none"), "-", "none"),
            ("heavy modules after 'import quark_cli.cli'", str(imports["import quark_cli.cli"] or "none"), "-", "none"),
        ]
    )
    save("startup", figures)
    return figures


if __name__ == "__main__":
    main()
