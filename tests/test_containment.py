"""Faults stay where they belong: a bad value fails its stack, a bad job its job, a bad run its run.

Stories: a module reports a set, a NaN, bytes; a job manager answers garbage; a submit hook forgets
its return; one run of a cron sweep is unreadable. Each time the rest goes on, and every file quark
writes stays strict JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

WILD = '''
import math

import numpy as np

from quark_cli import Core


class Wild(Core):
    """Reports a metric of the kind its config names; the repetition picks NaN or a number."""

    def get_parameter_options(self):
        kinds = ["set", "nan", "bytes", "tuple_keys", "numpy", "object"]
        return {"kind": {"values": kinds, "default": "set", "description": "what to report"}}

    def postprocess(self, data, config, **kwargs):
        kind, rep = config["kind"], kwargs["rep_count"]
        value = {
            "set": {"b", "a", "c"},
            "nan": float("nan") if rep == 1 else float(rep),
            "bytes": b"raw",
            "tuple_keys": {(0, 1): 1.5, (1, 1): -2.0},
            "numpy": np.array([1.0, np.inf, 3.0]),
            "object": object(),
        }[kind]
        self.metrics.add_metric_batch({"value": value, "other": 7})
        return data, 0.0
'''


def strict_json(path: Path):
    """Parse like a strict reader: NaN, Infinity and -Infinity tokens are errors."""

    def refuse(token: str):
        raise ValueError(f"{path}: non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def wild(tmp_path, write_config):
    (tmp_path / "wild.py").write_text(WILD)

    def config(*kinds: str, repetitions: int = 1) -> Path:
        return write_config(
            f"application: {{module: 'wild:Wild', config: {{kind: {list(kinds)}}}}}\nrepetitions: {repetitions}\n",
            f"wild-{'-'.join(kinds)}.yml",
        )

    return config


def test_values_with_a_faithful_json_form_are_converted(quark, wild, tmp_path):
    run = tmp_path / "run"
    assert quark("run", wild("set", "tuple_keys", "numpy"), "-o", run, "--quiet").exit_code == 0
    records = strict_json(run / "results.json")
    assert [r["quark_job_status"] for r in records] == ["FINISHED"] * 3
    values = [r["module"]["value"] for r in records]
    assert values[0] == ["a", "b", "c"]  # a set: sorted list
    assert values[1] == {"(0, 1)": 1.5, "(1, 1)": -2.0}  # tuple keys: their text
    assert values[2] == [1.0, None, 3.0]  # numpy array; Infinity is null...
    assert records[2]["module"]["nonfinite_values"] == {"value[1]": "Infinity"}  # ...its text kept beside
    for record in (strict_json(p) for p in (run / "records").glob("*.json")):
        assert record["quark_job_status"] == "FINISHED"


def test_a_value_json_cannot_hold_fails_its_stack_naming_module_and_metric(quark, wild, tmp_path):
    run = tmp_path / "run"
    result = quark("run", wild("bytes", "set", "object"), "-o", run, "--quiet")
    assert result.exit_code == 1, result.stderr  # not 70: the other stack finished
    records = strict_json(run / "results.json")
    assert [r["quark_job_status"] for r in records] == ["FAILED", "FINISHED", "FAILED"]
    assert records[0]["error"] == "Wild: metric value is bytes, which JSON cannot hold"
    assert records[2]["error"] == "Wild: metric value is object, which JSON cannot hold"
    assert records[0]["module"]["value"] is None and records[0]["module"]["other"] == 7
    again = quark("collect", run)
    assert again.exit_code == 1 and "internal error" not in again.stderr


def test_nan_metrics_are_null_in_every_file_and_reports_skip_them(quark, wild, tmp_path):
    run = tmp_path / "run"
    result = quark("run", wild("nan", repetitions=3), "-o", run)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    records = strict_json(run / "results.json")
    assert [r["module"]["value"] for r in records] == [None, 2.0, 3.0]
    assert records[0]["module"]["nonfinite_values"] == {"value": "NaN"}
    for output_format in ("table", "markdown", "csv", "json"):
        report = quark("report", run, "--format", output_format)
        assert report.exit_code == 0, (output_format, report.stderr)
        assert "NaN" not in report.stdout and "Infinity" not in report.stdout
    item = json.loads(quark("report", run, "--json").stdout)["items"][0]
    assert item["metrics"]["value"] == {"mean": 2.5, "std": pytest.approx(math.sqrt(0.5)), "n": 2, "missing": 1}
    assert "2.5 ± 0.71 (1 missing)" in quark("report", run).stdout
    assert json.loads(quark("status", run, "--json").stdout)["stack_totals"]["FINISHED"] == 3


FLAKY = '''
import json

from quark_cli import AsyncCore, AsyncJobManager, AsyncStatus, Core


class FileJobManager(AsyncJobManager):
    """A job is a file in its folder; this service cannot say whether a lost submission arrived."""

    def submit(self, payload):
        self.context.job_dir.mkdir(parents=True, exist_ok=True)
        (self.context.job_dir / "state.json").write_text(json.dumps({"state": "SUBMITTED", "payload": payload}))
        return {"id": "job-" + self.context.key}

    def get_status(self):
        answer = self.context.config["status_answer"]
        if answer != "real":
            return {"str_done": "DONE", "str_queued": "QUEUED", "none": None}[answer]
        return AsyncStatus(json.loads((self.context.job_dir / "state.json").read_text())["state"])

    def get_result(self):
        return json.loads((self.context.job_dir / "state.json").read_text())["payload"] ** 2


class Device(AsyncCore, Core):
    JobManager = FileJobManager

    def __init__(self, name=None):
        AsyncCore.__init__(self, interruptable="PRE", name=name)

    def get_parameter_options(self):
        return {
            "fault": {"values": ["none", "return_none", "connection_error"], "default": "none"},
            "status_answer": {"values": ["real", "str_done", "str_queued", "none"], "default": "real"},
        }

    def submit_preprocess(self, data, config, **kwargs):
        if config["fault"] == "connection_error":
            raise ConnectionError("[Errno 111] Connection refused")
        answer = self.job_manager.submit(3)
        return None if config["fault"] == "return_none" else answer
'''


def finish_files(run: Path) -> None:
    for state in run.glob("jobs/*/state.json"):
        value = json.loads(state.read_text())
        state.write_text(json.dumps({**value, "state": "DONE"}))


@pytest.fixture
def flaky(tmp_path, write_config):
    (tmp_path / "bad_answers.py").write_text(FLAKY)

    def config(faults: list[str], answers: list[str]) -> Path:
        return write_config(
            f"application: {{module: 'bad_answers:Device', config: {{fault: {faults}, status_answer: {answers}}}}}\n"
        )

    return config


def test_a_submission_that_raised_or_returned_nothing_fails_its_job_not_uncertain(quark, flaky, tmp_path):
    run = tmp_path / "run"
    submitted = quark("submit", flaky(["none", "return_none", "connection_error"], ["real"]), "-o", run)
    assert submitted.exit_code == 1, submitted.stderr  # two stacks failed; the good one waits
    assert "uncertain" not in submitted.stderr
    jobs = {job["stack"]: job for job in json.loads(quark("status", run, "--json", "--all").stdout)["jobs"]}
    assert jobs["000-r1"]["status"] == "SUBMITTED"
    assert jobs["001-r1"]["status"] == "FAILED"
    assert jobs["001-r1"]["error"] == (
        "Device.submit_preprocess returned None, which FileJobManager._handle_submit_info cannot read "
        "(TypeError: FileJobManager cannot read a submission answer of type NoneType; override _handle_submit_info); "
        "a submit hook returns the service's answer"
    )
    assert jobs["002-r1"]["status"] == "FAILED"
    assert jobs["002-r1"]["error"] == "Device.submit_preprocess raised ConnectionError: [Errno 111] Connection refused"
    finish_files(run)
    collected = quark("collect", run)
    assert collected.exit_code == 1 and "uncertain" not in collected.stdout + collected.stderr
    stacks = {s["stack"]: s for s in json.loads(quark("status", run, "--json").stdout)["stacks"]}
    assert stacks["000-r1"]["status"] == "FINISHED"
    assert (
        stacks["002-r1"]["error"] == "Device.submit_preprocess raised ConnectionError: [Errno 111] Connection refused"
    )


def test_a_status_that_is_not_an_asyncstatus_leaves_the_job_pending_with_a_warning(quark, flaky, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", flaky(["none"], ["real", "str_done", "str_queued", "none"]), "-o", run).exit_code == 3
    finish_files(run)
    collected = quark("collect", run)
    assert collected.exit_code == 3, collected.stderr  # not 70, and the good job went on
    assert "internal error" not in collected.stderr
    for answer in ("'DONE'", "'QUEUED'", "None"):
        assert f"FileJobManager.get_status() returned {answer}, not an AsyncStatus" in collected.stdout
    report = json.loads(quark("status", run, "--json").stdout)
    assert report["stack_totals"]["FINISHED"] == 1 and report["stack_totals"]["INTERRUPTED"] == 3
    warnings = sorted(job["warning"] for job in report["jobs"] if job["warning"])
    assert warnings[0].startswith("last poll failed: FileJobManager.get_status() returned 'DONE', not an AsyncStatus")
    assert len(warnings) == 3
    table = quark("status", run).stdout
    assert "warning:" in table

    sequential = quark("run", flaky(["none"], ["str_done"]), "-o", tmp_path / "sequential", "--quiet")
    assert sequential.exit_code == 1  # quark run cannot wait on a job it cannot read: that stack fails
    (record,) = json.loads((tmp_path / "sequential" / "results.json").read_text())
    assert record["error"].startswith("FileJobManager.get_status() returned 'DONE', not an AsyncStatus")


def test_collects_that_find_nothing_leave_no_trace_on_a_finished_run(quark_process, wild, tmp_path):
    run = tmp_path / "run"
    assert quark_process("run", wild("set"), "-o", run, "--quiet").returncode == 0
    before = {name: (run / name).read_bytes() for name in ("run.json", "logging.log", "results.json", "index.json")}
    for _ in range(3):  # cron, every ten minutes
        assert quark_process("collect", "--all", tmp_path, "--quiet").returncode == 0
    assert {name: (run / name).read_bytes() for name in before} == before


def test_what_modules_print_goes_to_stderr_and_json_stays_json(quark_process, tmp_path, write_config):
    (tmp_path / "chatty.py").write_text(
        "from quark_cli import Core\n\n\nclass Chatty(Core):\n"
        "    def preprocess(self, data, config, **kwargs):\n"
        "        print('HELLO FROM MODULE PRE')\n"
        "        return data, 0.0\n"
    )
    config = write_config("application: {module: 'chatty:Chatty'}\n")
    result = quark_process("run", config, "-o", tmp_path / "run", "--json", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["quark_job_status"] == "FINISHED"
    assert "HELLO FROM MODULE PRE" in result.stderr
    submitted = quark_process("submit", config, "-o", tmp_path / "run2", cwd=tmp_path)
    assert submitted.stdout.strip() == str(tmp_path / "run2")  # RUN=$(quark submit ...) gets the folder only


def test_a_damaged_cache_is_rebuilt_and_a_damaged_job_file_refused(quark, flaky, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", flaky(["none"], ["real"]), "-o", run).exit_code == 3
    index = json.loads((run / "index.json").read_text())
    (run / "index.json").write_text(json.dumps({**index, "stacks": {"000-r1": ["x"]}, "jobs": {"k": "DONE"}}))
    assert quark("status", run).exit_code == 3  # index.json is a cache: read past, not trusted
    finish_files(run)
    assert quark("collect", run).exit_code == 0

    failed = tmp_path / "failed"
    assert quark("submit", flaky(["connection_error"], ["real"]), "-o", failed).exit_code == 1
    (job_file,) = failed.glob("jobs/*.json")
    job_file.write_text(json.dumps({**json.loads(job_file.read_text()), "previous_attempts": "x"}))
    refused = quark("collect", failed, "--retry-failed")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"error: {job_file}: previous_attempts: 'x' is not list; the file was edited or damaged: restore it or "
        "remove the run"
    )


def test_collect_all_skips_a_locked_run_even_when_it_is_the_only_one(quark_process, flaky, tmp_path):
    import fcntl

    run = tmp_path / "runs" / "only"
    assert quark_process("submit", flaky(["none"], ["real"]), "-o", run, cwd=tmp_path).returncode == 3
    with open(run / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = quark_process("collect", "--all", tmp_path / "runs", "--quiet")
    assert result.returncode == 3 and result.stderr == "", result.stderr  # pending, said only without --quiet
