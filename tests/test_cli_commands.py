"""The commands around a run, as a researcher uses them for months: runs, validate, help, logs, colours.

Stories: ``quark runs`` lists every run with its state (a damaged one too, without stopping);
``quark validate`` answers before anything runs; every command's help has an example; ``-v`` shows
the log as it happens; nothing is coloured in a pipe; shell completion completes commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quark_cli.cli import app

REPO = Path(__file__).resolve().parents[1]

FINISHING = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules: [{name: AsyncSquare, config: {auto_finish: [true]}}]
repetitions: 1
"""
PENDING = FINISHING.replace("auto_finish: [true]", "auto_finish: [false]")


def test_runs_lists_each_run_with_its_state_oldest_first(quark, write_config, tmp_path):
    root = tmp_path / "quark-runs"
    assert quark("run", write_config(FINISHING, "finishing.yml"), "-o", root / "first", "-q").exit_code == 0
    assert quark("submit", write_config(PENDING, "pending.yml"), "-o", root / "second").exit_code == 3
    damaged = root / "zz-damaged"
    damaged.mkdir()
    (damaged / "run.json").write_text("{ not json")

    listed = quark("runs", root)
    assert listed.exit_code == 0
    first, second, broken = listed.stdout.splitlines()
    assert first.startswith("first  20") and "finishing.yml  2/2 finished, 0 pending, 0 failed" in first
    assert "(last: run " in first and first.endswith(" ago)")
    assert second.startswith("second  ") and "pending.yml  0/2 finished, 2 pending, 0 failed  (last: submit" in second
    assert broken.startswith(f"zz-damaged  damaged: {damaged / 'run.json'}: damaged JSON at line 1")

    document = json.loads(quark("runs", root, "--json").stdout)
    assert document["schema_version"] == 1 and document["root"] == str(root)
    by_name = {entry["name"]: entry for entry in document["runs"]}
    assert list(by_name) == ["first", "second", "zz-damaged"], "oldest first, unreadable ones last"
    assert by_name["second"]["stack_totals"] == {
        "total": 2,
        "FINISHED": 0,
        "INTERRUPTED": 2,
        "FAILED": 0,
        "NOT_STARTED": 0,
    }
    assert by_name["first"]["config_source"] == str(tmp_path / "finishing.yml")
    assert by_name["first"]["last_command"]["command"] == "run"
    assert by_name["zz-damaged"]["error"] and by_name["zz-damaged"]["stack_totals"] is None


def test_runs_defaults_to_quark_runs_dir_and_says_when_it_is_empty_or_missing(quark, tmp_path, monkeypatch):
    monkeypatch.setenv("QUARK_RUNS_DIR", str(tmp_path))
    empty = quark("runs")
    assert (empty.exit_code, empty.stdout) == (0, f"{tmp_path}: no run directories\n")
    missing = quark("runs", tmp_path / "nowhere")
    assert (missing.exit_code, missing.stderr) == (2, f"error: {tmp_path / 'nowhere'}: no such directory\n")
    (tmp_path / "a-file").write_text("not runs\n")
    for command in ("runs", "collect --all"):
        named = quark(*command.split(), tmp_path / "a-file")
        assert (named.exit_code, named.stderr) == (2, f"error: {tmp_path / 'a-file'}: a file, not a folder of runs\n")


def test_validate_describes_a_good_config_and_names_the_field_of_a_bad_one(quark, write_config, tmp_path):
    good = quark("validate", REPO / "configs" / "maxcut.yml")
    assert good.exit_code == 0
    assert good.stdout.splitlines()[1:] == [
        "  MaxCut → QAOA → Sampler: 6 backlog item(s) (MaxCut.nodes: 4, 6, 8; QAOA.p: 1, 2)",
        good.stdout.splitlines()[2],
    ]
    assert good.stdout.splitlines()[2].startswith("  2 repetition(s): 12 stacks; config hash ")
    document = json.loads(quark("validate", REPO / "configs" / "maxcut.yml", "--json").stdout)
    assert (document["valid"], document["backlog_items"], document["stacks"]) == (True, 6, 12)
    (branch,) = document["branches"]
    assert branch["parameters"]["Sampler.shots"] == [1000] and branch["parameters"]["QAOA.p"] == [1, 2]

    bad = write_config(
        """
        application:
          name: MaxCut
          submodules: [{name: QAOA, config: {p: [7]}, submodules: [{name: Sampler}]}]
        """
    )
    refused = quark("validate", bad)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {bad}: application.submodules[0].config.p: 7 is not allowed; choose from [1, 2, 3]\n"
    )
    as_json = quark("validate", bad, "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {
        "schema_version": 1,
        "config": str(bad),
        "valid": False,
        "error": f"{bad}: application.submodules[0].config.p: 7 is not allowed; choose from [1, 2, 3]",
    }
    assert list(tmp_path.iterdir()) == [bad], "validate writes nothing"


def test_validate_lists_each_distinct_value_once_lists_and_maps_too(quark, write_config, tmp_path):
    (tmp_path / "angles_module.py").write_text(
        textwrap.dedent(
            """
            from quark_cli import Core

            class Angles(Core):
                def get_parameter_options(self):
                    return {
                        "angles": {"values": [[0.1]], "default": [0.1], "custom_input": True, "description": "-"},
                        "mix": {"values": [{"a": 1}], "default": {"a": 1}, "custom_input": True, "description": "-"},
                    }
            """
        )
    )
    config = write_config(
        """
        application:
          module: angles_module:Angles
          config:
            angles: [[0.1, 0.2], [0.1, 0.2], [0.2], [0.1, 0.2]]
            mix: [{a: 1}, {a: [1, 2]}, {a: 1.0}, {a: [1, 2]}, {a: true}]
        """
    )
    document = json.loads(quark("validate", config, "--json").stdout)
    (branch,) = document["branches"]
    assert document["backlog_items"] == 20
    assert branch["parameters"] == {
        "Angles.angles": [[0.1, 0.2], [0.2]],
        "Angles.mix": [{"a": 1}, {"a": [1, 2]}, {"a": 1.0}, {"a": True}],  # what each stack's module gets
    }
    as_typed = [type(value["a"]) for value in branch["parameters"]["Angles.mix"]]
    assert as_typed == [int, list, float, bool]


def test_validate_loads_no_simulator():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from quark_cli.cli import app\n"
        f"result = CliRunner().invoke(app, ['validate', {str(REPO / 'configs' / 'maxcut-async.yml')!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m == 'qat' or m.startswith(('qat.', 'matplotlib'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [None, *sorted(c.name or c.callback.__name__ for c in app.registered_commands)])
def test_every_command_has_help_with_an_example(quark, command):
    result = quark(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout, result.stdout


def test_verbose_prints_the_log_as_it_happens_and_debug_adds_tracebacks(quark, write_config, tmp_path):
    config = write_config(FINISHING)
    plain = quark("run", config, "-o", tmp_path / "plain", "-q")
    assert "stack 000-r1 FINISHED" not in plain.stderr
    verbose = quark("-v", "run", config, "-o", tmp_path / "verbose", "-q")
    assert verbose.exit_code == 0
    assert "INFO" in verbose.stderr and "stack 000-r1 FINISHED" in verbose.stderr
    assert "stack 000-r1 FINISHED" in (tmp_path / "verbose" / "logging.log").read_text()
    after = quark("run", config, "-o", tmp_path / "after", "-q")
    assert "stack 000-r1 FINISHED" not in after.stderr, "the log goes back to the file only"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"schema_version": 1}')
    terse = quark("status", broken)
    assert terse.exit_code == 2 and "Traceback" not in terse.stderr
    debug = quark("--debug", "status", broken)
    assert debug.exit_code == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == terse.stderr.rstrip()


def test_nothing_is_coloured_in_a_pipe(quark_process, write_config, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    config = write_config(FINISHING)
    for args in (["modules"], ["run", config, "-o", tmp_path / "run"], ["report", tmp_path / "run"]):
        done = quark_process(*args, env=env)
        assert done.returncode == 0, done.stderr
        assert "\x1b[" not in done.stdout + done.stderr, args


def test_shell_completion_completes_commands_and_options():
    """What the script of ``quark --install-completion bash`` asks the installed ``quark``."""
    quark = Path(sys.executable).parent / "quark"
    env = {**os.environ, "_QUARK_COMPLETE": "complete_bash", "COMP_WORDS": "quark rep", "COMP_CWORD": "1"}
    done = subprocess.run([str(quark)], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["report"]
    env.update(COMP_WORDS="quark report x --for", COMP_CWORD="3")
    done = subprocess.run([str(quark)], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["--format"]


def test_status_counts_many_pending_jobs_by_module_and_still_lists_the_failed_ones(quark, write_config, tmp_path):
    from toy_modules import fail_job

    run = tmp_path / "run"
    many = PENDING.replace("repetitions: 1", "repetitions: 30")
    assert quark("submit", write_config(many), "-o", run).exit_code == 3
    failed = sorted(run.glob("jobs/001-r7-*"))[0]
    fail_job(failed, "node crashed")
    assert quark("collect", run).exit_code == 1

    shown = quark("status", run)
    lines = shown.stdout.splitlines()
    assert shown.exit_code == 1
    assert any("Numbers.AsyncSquare" in line and "SUBMITTED" in line and "59" in line for line in lines), shown.stdout
    assert "001-r7-" in shown.stdout and "node crashed" in shown.stdout  # the table folds long keys
    assert sum("-r" in line and "SUBMITTED" in line for line in lines) == 0, "pending jobs are counted, not listed"

    every = quark("status", run, "--all")
    assert every.stdout.count("SUBMITTED") == 59 and every.stdout.count("FAILED") == 1


def test_only_quark_cli_own_log_records_skip_their_caller():
    """quark-cli's log lines skip the frame walk for their caller (half a line's cost); a module's
    own logger keeps file and line, and a quark-cli line asked for its stack still has it."""
    import io
    import logging

    import quark_cli.run_log  # noqa: F401 (sets the quark_cli logger's caller look-up)

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(filename)s:%(lineno)d %(funcName)s %(message)s"))
    loggers = [logging.getLogger("quark_cli"), logging.getLogger("quark_cli_test_module")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        loggers[0].info("engine line")
        loggers[0].info("engine stack", stack_info=True)
        loggers[1].info("module line")
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    lines = buffer.getvalue().splitlines()
    this = "test_only_quark_cli_own_log_records_skip_their_caller"
    assert lines[0] == "quark_cli (unknown file):0 (unknown function) engine line"
    assert lines[1].startswith("quark_cli test_cli_commands.py:") and lines[1].endswith(f"{this} engine stack")
    assert lines[2] == "Stack (most recent call last):" and f"in {this}" in buffer.getvalue()
    assert lines[-1].startswith("quark_cli_test_module test_cli_commands.py:")
    assert lines[-1].endswith(f"{this} module line")
