"""The README as a user follows it: every command block runs, in order, as written.

A block is preceded by ``<!-- readme-test: KIND -->``: ``run`` (each line must exit 0 or 3, or the
codes after ``; exit``), ``qaptiva`` (run against the stand-in Qaptiva server, the shipped config
pointed at it), ``file NAME`` (saved as NAME in the scratch folder), ``schema COMMAND`` (the JSON
example has the keys of the real ``quark COMMAND --json``) or ``exempt: WHY``. A command block
without one fails here, so a new example cannot silently rot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_local_jobs import kill_processes_of

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
COMMAND_LANGUAGES = {"", "sh", "bash", "shell", "console"}
MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    line: int
    language: str
    text: str
    marker: str | None

    @property
    def kind(self) -> str:
        return (self.marker or "").split(":")[0].split(";")[0].split()[0] if self.marker else ""


def readme_blocks() -> list[Block]:
    blocks, lines = [], README.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start = index
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(previous.strip())
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        blocks.append(Block(start + 1, fence.group(1), "\n".join(lines[start + 1 : end]) + "\n", marker and marker[1]))
        index = end + 1
    return blocks


def test_every_command_block_says_how_it_is_tested():
    unmarked = [f"README.md line {b.line}" for b in readme_blocks() if b.language in COMMAND_LANGUAGES and not b.marker]
    assert not unmarked, f"command blocks without <!-- readme-test: ... -->: {unmarked}"
    kinds = {b.kind for b in readme_blocks() if b.marker}
    assert kinds <= {"run", "qaptiva", "file", "schema", "exempt"}, kinds
    for block in readme_blocks():
        if block.kind == "exempt":
            assert len(block.marker.split(":", 1)[1].strip()) > 20, f"line {block.line}: say why it is exempt"


@pytest.fixture
def sandbox(tmp_path):
    """A scratch folder laid out like the top of a clone (configs/), with its own HOME."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    (tmp_path / "home").mkdir()
    yield tmp_path
    for jobs in tmp_path.glob("runs/*/jobs"):
        kill_processes_of(jobs.resolve())


def shell_env(sandbox: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(sandbox / "home"),
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        **extra,
    }


def run_block(block: Block, sandbox: Path, env: dict[str, str]) -> list[str]:
    """Run each command line of a block in the sandbox; returns the problems found."""
    allowed = {0, 3}
    if block.marker and "; exit" in block.marker:
        allowed = {int(code) for code in block.marker.split("; exit", 1)[1].split()}
    problems = []
    for number, line in enumerate(block.text.splitlines(), start=block.line + 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        done = subprocess.run(
            ["/bin/bash", "-c", line], cwd=sandbox, env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode not in allowed or "Traceback" in done.stderr:
            problems.append(f"README.md line {number}: {line!r} exited {done.returncode}\n{done.stdout}{done.stderr}")
    return problems


@pytest.fixture
def standin_qaptiva(sandbox):
    """The stand-in Qaptiva server as a separate process, and the shipped Qaptiva config pointed at it."""
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "qaptiva_server.py"), "--port", "0", "--delay", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        for config in (sandbox / "configs").glob("*-qaptiva.yml"):
            text = config.read_text().replace("qaptiva.example.org", "127.0.0.1")
            config.write_text(text.replace("port: [443]", f"port: [{port}]").replace("[true]", "[false]"))
        yield {"QLM_USER": "alice", "QLM_PASSWD": "wonderland"}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_readme_runs_top_to_bottom(sandbox, standin_qaptiva):
    problems = []
    for block in readme_blocks():
        if block.kind == "file":
            (sandbox / block.marker.split()[1]).write_text(block.text)
        elif block.kind == "run":
            problems += run_block(block, sandbox, shell_env(sandbox))
        elif block.kind == "qaptiva":
            problems += run_block(block, sandbox, shell_env(sandbox, **standin_qaptiva))
    assert not problems, "\n".join(problems)

    # what the blocks promise, checked on what they left behind
    assert (sandbox / "home" / ".bash_completions" / "quark.sh").exists()
    maxcut_plots = {p.name for p in (sandbox / "runs" / "maxcut" / "plots").glob("*.png")}
    assert {"approximation_ratio_vs_depth.png", "module_times.png", "metric_expected_cut_ratio.png"} <= maxcut_plots
    coins_plots = {p.name for p in (sandbox / "runs" / "coins" / "plots").glob("*.png")}
    assert {"metric_mean_heads.png", "metric_error.png", "module_times.png"} <= coins_plots, "a custom app's metrics"
    assert "approximation_ratio" in (sandbox / "runs" / "maxcut.csv").read_text().splitlines()[0]
    assert (sandbox / "runs" / "ghz-async" / "plots" / "job_timeline.png").exists()
    for run in ("maxcut", "ghz-async", "my-device", "ghz-qaptiva", "coins", "coins-async"):
        records = json.loads((sandbox / "runs" / run / "results.json").read_text())
        assert {r["quark_job_status"] for r in records} == {"FINISHED"}, run
    to_cancel = json.loads((sandbox / "runs" / "to-cancel" / "results.json").read_text())
    assert len(to_cancel) == 4

    schema_checks(sandbox)


def test_the_systemd_unit_runs_the_cron_lines_command():
    files = {b.marker.split()[1]: b.text for b in readme_blocks() if b.kind == "file"}
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", files["quark-collect.service"], flags=re.MULTILINE)
    (cron,) = re.findall(r"^\*/10 \* \* \* \* (.+)$", README.read_text(), flags=re.MULTILINE)
    assert exec_start.replace("%h", "$HOME") == cron.replace('"', "")
    assert re.search(r"^OnCalendar=\*:0/10$", files["quark-collect.timer"], flags=re.MULTILINE)


# -- the documented JSON schemas ------------------------------------------------------------------------

#: Paths (``a.b[]``) whose keys are names (parameters, metrics, statuses): the values are checked instead.
NAME_KEYED = {
    "status": {"job_totals"},
    "report": {
        "rows[].parameters",
        "rows[].metrics",
        "rows[].module_times_s",
        "items[].parameters",
        "items[].metrics",
        "items[].module_times_s",
    },
    "runs": set(),
    "validate": {"branches[].parameters"},
    "collect": {"[].errors"},
    "cancel": {"ended", "skipped", "errors"},
    "modules": {"[].parameters"},
}
#: Paths where any JSON value may stand (a parameter's values can be lists, e.g. SLURM's extra_sbatch).
ANY_VALUE = {
    "report": {"rows[].parameters.*", "items[].parameters.*"},
    "validate": {"branches[].parameters.*[]"},
    "modules": {"[].parameters.*.values[]", "[].parameters.*.default"},
}
#: Keys documented as sometimes absent.
OPTIONAL = {
    "report": {"plots"},
    "modules": {f"[].parameters.*.{key}" for key in ("custom_input", "min", "max", "note_above")},
}


def same_shape(actual, example, path: str, command: str) -> list[str]:
    if path in ANY_VALUE.get(command, set()):
        return []
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: a {type(actual).__name__}, documented as an object"]
        if path in NAME_KEYED[command]:
            sample = next(iter(example.values()), None)
            if sample is None:
                return []
            return [problem for value in actual.values() for problem in same_shape(value, sample, f"{path}.*", command)]
        optional = {key for key in example if f"{path}.{key}".lstrip(".") in OPTIONAL.get(command, set())}
        problems = [f"{path}.{key}: not documented" for key in actual.keys() - example.keys()]
        problems += [f"{path}.{key}: documented but missing" for key in example.keys() - actual.keys() - optional]
        for key in example.keys() & actual.keys():
            problems += same_shape(actual[key], example[key], f"{path}.{key}".lstrip("."), command)
        return problems
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: a {type(actual).__name__}, documented as a list"]
        if not example:
            return []
        return [problem for value in actual for problem in same_shape(value, example[0], f"{path}[]", command)]
    if isinstance(actual, (dict, list)):
        return [f"{path}: a {type(actual).__name__}, documented as a value like {example!r}"]
    return []


def documented_examples() -> dict[str, object]:
    return {b.marker.split()[1]: json.loads(b.text) for b in readme_blocks() if b.kind == "schema"}


def schema_checks(sandbox: Path) -> None:
    """The real ``--json`` documents of the runs the README made have the documented keys."""
    commands = {
        "status": "quark status runs/to-cancel --json",
        "report": "quark report runs/ghz-async --plots --json",
        "runs": "quark runs runs --json",
        "validate": "quark validate configs/maxcut.yml --json",
        "collect": "quark collect runs/to-cancel --json",
        "cancel": "quark cancel runs/to-cancel --json",
        "modules": "quark modules --json",
    }
    examples = documented_examples()
    assert set(examples) == set(commands)
    problems = []
    for name, command in commands.items():
        done = subprocess.run(
            ["/bin/bash", "-c", command], cwd=sandbox, env=shell_env(sandbox), capture_output=True, text=True
        )
        document = json.loads(done.stdout)
        assert document, f"{command} printed an empty document"
        problems += [f"{command}: {problem}" for problem in same_shape(document, examples[name], "", name)]
    assert not problems, "\n".join(problems)
    invalid = subprocess.run(
        ["/bin/bash", "-c", "quark validate no-such.yml --json"],
        cwd=sandbox,
        env=shell_env(sandbox),
        capture_output=True,
        text=True,
    )
    assert invalid.returncode == 2
    assert set(json.loads(invalid.stdout)) == {"schema_version", "config", "valid", "error"}


def test_the_shape_check_catches_an_undocumented_key():
    example = documented_examples()["runs"]
    real = json.loads(json.dumps(example))
    real["runs"][0]["surprise"] = 1
    del real["runs"][0]["error"]
    assert same_shape(real, example, "", "runs") == [
        "runs[].surprise: not documented",
        "runs[].error: documented but missing",
    ]


def test_readme_python_is_the_module_the_readme_runs():
    files = {b.marker.split()[1]: b.text for b in readme_blocks() if b.kind == "file"}
    assert "class MyAsyncUpgradedSolver(AsyncCore, Sampler):" in files["my_device.py"]
    assert "module: my_device:MyAsyncUpgradedSolver" in files["my-device.yml"]
    compile(files["my_device.py"], "my_device.py", "exec")
