"""Bad input, table-driven: one line naming the file and the field, exit 2, and nothing on disk changed.

Configs (beyond the basic table in test_config.py): empty, huge, nested too deep, alias floods, wrong
types, empty lists, modules that raise while importing. Run directories: not one at all, damaged or
hand-edited run.json / records / job_info.json, a schema_version from the future, a missing
job_info, a job_manager the config never named. Every byte of the run stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

GHZ_TAIL = "submodules: [{name: GHZCircuit, submodules: [{name: Sampler}]}]"
MAXCUT_TAIL = "submodules: [{name: QAOA, submodules: [{name: Sampler}]}]"


def _bomb() -> str:
    anchors = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)
    ]
    return "application:\n  name: GHZ\n  config: {n_qubits: [[" + ", ".join(anchors) + "]]}\n"


def _deep_modules(depth: int) -> str:
    node = "{module: 'toy_modules:Recorder'}"
    for _ in range(depth):
        node = f"{{module: 'toy_modules:Recorder', submodules: [{node}]}}"
    return f"application: {node}\n"


BAD_CONFIGS = [
    ("empty file", "", ": must be a mapping with an 'application' key"),
    ("larger than 1 MB", "# " + "x" * 1_000_001 + "\n", ": file is larger than 1000000 bytes"),
    ("nested 5000 deep", "application: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
    ("billion laughs", _bomb(), ": application: expands to more than 1000000 values (YAML aliases"),
    ("alias to itself", "application: &a {name: GHZ, submodules: [*a]}\n", ": application: expands to more than"),
    ("stack of 20 modules", _deep_modules(20), "deeper than 16 modules are not supported"),
    ("not UTF-8", b"\xff\xfeapplication: x\n", ": cannot be read (UnicodeDecodeError"),
    ("tab indentation", "application:\n\tname: GHZ\n", ": line 2, column 1: not valid YAML"),
    (
        "config not a mapping",
        f"application: {{name: GHZ, config: [1, 2], {GHZ_TAIL}}}\n",
        ": application.config: must be a mapping",
    ),
    ("name a number", "application: {name: 5}\n", ": application.name: must be a module name (a string), not 5"),
    (
        "module a list",
        "application: {module: [a, b]}\n",
        ": application.module: must be a string 'package.module:ClassName'",
    ),
    (
        "module without class",
        "application: {module: toy_modules}\n",
        ": application.module: cannot import 'toy_modules'",
    ),
    (
        "module not a Core",
        "application: {module: 'toy_modules:finish_job'}\n",
        ": application.module: cannot import 'toy_modules:finish_job'",
    ),
    (
        "module raises on import",
        "application: {module: 'boom_module:Thing'}\n",
        ": application.module: cannot import 'boom_module:Thing' (RuntimeError: boom at import)",
    ),
    (
        "submodule not a mapping",
        "application: {name: GHZ, submodules: [GHZCircuit]}\n",
        ": application.submodules[0]: must be a mapping",
    ),
    (
        "unknown key in a module",
        f"application: {{name: GHZ, params: {{}}, {GHZ_TAIL}}}\n",
        ": application.params: unknown key",
    ),
    (
        "null value",
        f"application: {{name: GHZ, config: {{n_qubits: [null]}}, {GHZ_TAIL}}}\n",
        ": application.config.n_qubits: `null` is not a whole number",
    ),
    (
        "true for a number",
        f"application: {{name: MaxCut, config: {{nodes: [true]}}, {MAXCUT_TAIL}}}\n",
        ": application.config.nodes: `true` is not a whole number",
    ),
    (
        "list in a list",
        "application: {name: MaxCut, submodules: [{name: QAOA, config: {p: [[1]]}, submodules: [{name: Sampler}]}]}\n",
        ": application.submodules[0].config.p: nested value [1] is not allowed",
    ),
    (
        "empty shots list",
        "application: {name: GHZ, submodules: [{name: GHZCircuit, submodules: [SAMPLER]}]}\n".replace(
            "SAMPLER", "{name: Sampler, config: {shots: []}}"
        ),
        ": application.submodules[0].submodules[0].config.shots: empty list",
    ),
    (
        "repetitions 1.5",
        f"application: {{name: GHZ, {GHZ_TAIL}}}\nrepetitions: 1.5\n",
        ": repetitions: must be a whole number from 1 to 10000, not 1.5",
    ),
    ("duplicate key in a module", "application: {name: GHZ, name: MaxCut}\n", "duplicate key 'name'"),
]


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(quark, tmp_path, text, message):
    (tmp_path / "boom_module.py").write_text('raise RuntimeError("boom at import")\n')
    path = tmp_path / "config.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = quark("submit", path, "-o", tmp_path / "run")
    assert result.exit_code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and message in line, line
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "run").exists()


RUN_CONFIG = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules:
    - name: Double
      submodules: [{name: AsyncSquare}]
"""
JOB = "jobs/000-r1-Numbers.Double.AsyncSquare-pre.json"
RECORD = "records/000-r1.json"


def edit_json(relative: str, change) -> callable:
    def mutate(run: Path) -> None:
        path = run / relative
        value = json.loads(path.read_text())
        change(value)
        path.write_text(json.dumps(value, indent=2))

    return mutate


def write(relative: str, data: bytes | str) -> callable:
    def mutate(run: Path) -> None:
        path = run / relative
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return mutate


def truncate(relative: str) -> callable:
    def mutate(run: Path) -> None:
        path = run / relative
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])

    return mutate


def replace_with_folder(relative: str) -> callable:
    def mutate(run: Path) -> None:
        (run / relative).unlink()
        (run / relative).mkdir()

    return mutate


def replace_with_file(relative: str) -> callable:
    def mutate(run: Path) -> None:
        shutil.rmtree(run / relative, ignore_errors=True)
        (run / relative).write_text("x")

    return mutate


def link_to_itself(relative: str) -> callable:
    def mutate(run: Path) -> None:
        (run / relative).unlink()
        (run / relative).symlink_to(Path(relative).name)

    return mutate


# (case, how the run is damaged, command, the file the message names, what it says after the file)
BAD_RUNS = [
    ("run.json truncated", truncate("run.json"), "collect", "run.json", ": damaged JSON at line"),
    (
        "run.json from the future",
        edit_json("run.json", lambda v: v.update(schema_version=99)),
        "status",
        "run.json",
        ": schema_version: 99 is newer than this quark-cli understands (2); upgrade",
    ),
    (
        "run.json a list",
        write("run.json", "[]"),
        "collect",
        "run.json",
        ": schema_version: missing; this is not a quark-cli run.json",
    ),
    (
        "run.json without config_hash",
        edit_json("run.json", lambda v: v.pop("config_hash")),
        "collect",
        "run.json",
        ": config_hash: missing",
    ),
    (
        "run.json stacks a word",
        edit_json("run.json", lambda v: v.update(stacks="many")),
        "status",
        "run.json",
        ": stacks: 'many' is not int",
    ),
    (
        "run.json key twice",
        write("run.json", '{"schema_version": 1, "config_hash": "a", "config_hash": "b", "stacks": 2}'),
        "collect",
        "run.json",
        ": config_hash: named twice",
    ),
    (
        "config.yml edited",
        write("config.yml", RUN_CONFIG.replace("[1, 2]", "[1, 3]")),
        "collect",
        "config.yml",
        ": changed since the run was made",
    ),
    ("config.yml deleted", lambda run: (run / "config.yml").unlink(), "collect", "config.yml", ": missing"),
    (
        "config.yml broken YAML",
        write("config.yml", "application: [unclosed"),
        "collect",
        "config.yml",
        ": line 2, column 1: not valid YAML",
    ),
    ("record truncated", truncate(RECORD), "collect", RECORD, ": damaged JSON at line"),
    (
        "record from the future",
        edit_json(RECORD, lambda v: v.update(schema_version=2)),
        "collect",
        RECORD,
        ": schema_version: 2 is newer",
    ),
    (
        "record status unknown",
        edit_json(RECORD, lambda v: v.update(quark_job_status="DONE")),
        "collect",
        RECORD,
        ": quark_job_status: 'DONE' is not one of ['FINISHED', 'INTERRUPTED', 'FAILED']",
    ),
    (
        "record of another stack",
        edit_json(RECORD, lambda v: v.update(stack="001-r1")),
        "collect",
        RECORD,
        ": stack: '001-r1' does not match the file name 000-r1.json",
    ),
    (
        "record jobs a word",
        edit_json(RECORD, lambda v: v.update(jobs="x")),
        "status",
        RECORD,
        ": jobs: 'x' is not list",
    ),
    ("job_info truncated", truncate(JOB), "collect", JOB, ": damaged JSON at line"),
    ("job_info deleted", lambda run: (run / JOB).unlink(), "collect", JOB, ": missing, yet jobs in"),
    (
        "job_info from the future",
        edit_json(JOB, lambda v: v.update(schema_version=7)),
        "status",
        JOB,
        ": schema_version: 7 is newer",
    ),
    (
        "job_info status unknown",
        edit_json(JOB, lambda v: v.update(status="WHATEVER")),
        "collect",
        JOB,
        ": status: 'WHATEVER' is not one of",
    ),
    (
        "job_info of another job",
        edit_json(JOB, lambda v: v.update(key="000-r1-x-pre")),
        "collect",
        JOB,
        ": key: '000-r1-x-pre' does not match its file name",
    ),
    (
        "job_info info a string",
        edit_json(JOB, lambda v: v.update(info="abc")),
        "collect",
        JOB,
        ": info: 'abc' is not dict",
    ),
    (
        "job_info level a string",
        edit_json(JOB, lambda v: v.update(level="0")),
        "collect",
        JOB,
        ": level: '0' is not int",
    ),
    (
        "job_info phase unknown",
        edit_json(JOB, lambda v: v.update(phase="middle")),
        "collect",
        JOB,
        ": phase: 'middle' is not 'pre' or 'post'",
    ),
    (
        "job_info names a module to import",
        edit_json(JOB, lambda v: v.update(job_manager="sneaky_manager:Manager")),
        "collect",
        JOB,
        ": job_manager: 'sneaky_manager:Manager' is not the job manager of a module in the run's config",
    ),
    ("job_info not UTF-8", write(JOB, b"\xff\xfe{}"), "status", JOB, ": cannot be read (UnicodeDecodeError)"),
    ("job_info nested 100000 deep", write(JOB, "[" * 100_000 + "]" * 100_000), "collect", JOB, ": damaged JSON"),
    ("job_info a folder", replace_with_folder(JOB), "collect", JOB, ": is a folder, not a job_info file"),
    (".staging a file", replace_with_file(".staging"), "collect", ".staging", ": is a file, not a folder; move it out"),
    (
        "records a file",
        replace_with_file("records"),
        "collect",
        "records",
        ": a part of its path is a file, not a folder",
    ),
    (".lock a folder", replace_with_folder(".lock"), "collect", ".lock", ": is a folder, not the run's lock file"),
    (
        "run.json a link in a loop",
        link_to_itself("run.json"),
        "status",
        "run.json",
        ": cannot be read (OSError: Too many",
    ),
    (
        "job_info key twice",
        write(JOB, '{"schema_version": 1, "status": "DONE", "status": "FAILED"}'),
        "collect",
        JOB,
        ": status: named twice",
    ),
]


def digest(run: Path) -> dict[str, str]:
    """Every file of the run and its sha256, and every folder: what 'unchanged' means."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(run.rglob("*"))
    }


@pytest.mark.parametrize(
    ("damage", "command", "named", "message"), [case[1:] for case in BAD_RUNS], ids=[c[0] for c in BAD_RUNS]
)
def test_damaged_run(quark, tmp_path, monkeypatch, damage, command, named, message):
    (tmp_path / "sneaky_manager.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').touch()\nclass Manager: ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # importable, were quark to import what a job_info names
    config = tmp_path / "config.yml"
    config.write_text(RUN_CONFIG)
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    damage(run)
    before = digest(run)

    result = quark(command, run)
    assert result.exit_code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {run / named}{message}"), line
    assert "Traceback" not in result.stdout + result.stderr
    assert digest(run) == before, "a refused command changes nothing in the run"
    assert not (tmp_path / "imported").exists(), "a job_info.json never makes quark import a module"


@pytest.mark.parametrize("folder", ["benchmarks", "benchmarks/benchmark_0"])
def test_a_file_in_place_of_the_benchmarks_folder_fails_the_run_not_its_stacks(quark, tmp_path, folder):
    """A module's store_dir cannot be made: the run is damaged (exit 2, naming the file in the way);
    the stacks stay pending, and the done job's answer is kept for the collect after the repair."""
    from toy_modules import finish_job

    config = tmp_path / "config.yml"
    config.write_text(RUN_CONFIG)
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    shutil.rmtree(run / folder)
    (run / folder).write_text("x")
    finish_job(run / JOB.removesuffix(".json"))

    result = quark("collect", run)
    assert result.exit_code == 2
    assert result.stderr == f"error: {run / folder}: is a file, not a folder; restore it or remove the run\n"
    status = json.loads(quark("status", run, "--json").stdout)
    assert status["stack_totals"]["FAILED"] == 0 and status["stack_totals"]["INTERRUPTED"] == 2
    assert json.loads((run / JOB).read_text())["status"] == "DONE"

    (run / folder).unlink()
    assert quark("collect", run).exit_code == 3
    assert json.loads(quark("status", run, "--json").stdout)["stack_totals"]["FINISHED"] == 1


@pytest.mark.parametrize("damage", ["records", "jobs"])
def test_runs_lists_a_run_with_a_file_for_a_folder_as_damaged_and_the_others_too(quark, tmp_path, damage):
    config = tmp_path / "config.yml"
    config.write_text(RUN_CONFIG)
    root = tmp_path / "runs"
    for name in ("good", "bad"):
        assert quark("submit", config, "-o", root / name).exit_code == 3
    replace_with_file(damage)(root / "bad")
    result = quark("runs", root, "--json")
    assert result.exit_code == 0, result.stderr
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)["runs"]}
    assert entries["good"]["error"] is None and entries["good"]["stack_totals"]["INTERRUPTED"] == 2
    assert entries["bad"]["error"].startswith(f"{root / 'bad' / damage}: ")


@pytest.mark.parametrize("name", ["index.json", "index.sha256"])
def test_an_index_file_nested_past_the_parser_is_rebuilt_like_any_damaged_one(quark, tmp_path, name):
    config = tmp_path / "config.yml"
    config.write_text(RUN_CONFIG)
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    (run / name).write_text("[" * 100_000 + "]" * 100_000)
    for command in ("status", "collect", "status"):
        result = quark(command, run)
        assert result.exit_code == 3, result.stderr


def test_a_module_file_nested_past_the_parser_is_bad_input(quark, write_config, tmp_path):
    modules = tmp_path / "module_db.json"
    modules.write_text("[" * 1000 + "]" * 1000)
    result = quark("modules", "-m", modules)
    assert result.exit_code == 2
    assert result.stderr == f"error: {modules}: nested too deeply; a module file is a list of module entries\n"


NOT_RUNS = [
    (
        "empty folder",
        lambda p: p.mkdir(),
        "not a quark run directory (no run.json); give the folder 'quark submit' printed",
    ),
    ("a file", lambda p: p.write_text("x"), "is a file, not a run directory; give the folder 'quark submit' printed"),
    ("nothing there", lambda p: None, "no such run directory"),
]


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in NOT_RUNS], ids=[c[0] for c in NOT_RUNS])
@pytest.mark.parametrize("command", ["collect", "status"])
def test_a_run_dir_that_is_not_one(quark, tmp_path, make, message, command):
    path = tmp_path / "not-a-run"
    make(path)
    before = digest(tmp_path)
    result = quark(command, path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}: {message}"
    assert digest(tmp_path) == before


def test_the_tables_cover_at_least_thirty_bad_inputs():
    assert len(BAD_CONFIGS) + len(BAD_RUNS) + len(NOT_RUNS) >= 30
