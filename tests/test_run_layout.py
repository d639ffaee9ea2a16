"""The run directory's layout: job files flat in ``jobs/``, item folders only where a module writes.

A run made by an earlier quark-cli (run.json of schema version 1, job files in
``jobs/<key>/job_info.json``) is collected to its end in its own layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from toy_modules import finish_job

QUIET_MODULES = """
from toy_modules import AsyncSquare, Numbers


class QuietNumbers(Numbers):
    uses_store_dir = False


class QuietSquare(AsyncSquare):
    uses_store_dir = False
"""

TWO_ITEMS = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules: [{name: AsyncSquare}]
"""


def _quiet_config(write_config, tmp_path: Path, device: str) -> Path:
    (tmp_path / "quiet_modules.py").write_text(QUIET_MODULES)
    return write_config(
        f"""
        application:
          module: quiet_modules:QuietNumbers
          config: {{start: [1, 2]}}
          submodules: [{{module: "{device}"}}]
        """
    )


def _statuses(run: Path) -> dict[str, str]:
    return {record["stack"]: record["quark_job_status"] for record in json.loads((run / "results.json").read_text())}


def test_a_stack_whose_modules_write_no_files_gets_no_item_folder(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", _quiet_config(write_config, tmp_path, "quiet_modules:QuietSquare"), "-o", run).exit_code == 3
    for job in run.glob("jobs/*.json"):
        finish_job(job.with_suffix(""))
    assert quark("collect", run).exit_code == 0
    assert _statuses(run) == {"000-r1": "FINISHED", "001-r1": "FINISHED"}
    assert not (run / "benchmarks").exists()


def test_one_module_that_may_write_gets_its_stack_the_item_folder(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", _quiet_config(write_config, tmp_path, "toy_modules:AsyncSquare"), "-o", run).exit_code == 3
    assert sorted(path.name for path in (run / "benchmarks").iterdir()) == ["benchmark_0", "benchmark_1"]


def test_job_files_lie_flat_beside_the_folders_their_backend_keeps(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", write_config(TWO_ITEMS), "-o", run).exit_code == 3
    keys = ["000-r1-Numbers.AsyncSquare-pre", "001-r1-Numbers.AsyncSquare-pre"]
    assert sorted(path.name for path in run.glob("jobs/*.json")) == [f"{key}.json" for key in keys]
    assert [json.loads((run / "jobs" / f"{key}.json").read_text())["key"] for key in keys] == keys
    assert not list(run.glob("jobs/*/job_info.json"))
    assert json.loads((run / "run.json").read_text())["schema_version"] == 2


def _as_made_before(run: Path) -> None:
    """The run as a quark-cli of run.json version 1 left it: jobs/<key>/job_info.json."""
    for path in run.glob("jobs/*.json"):
        folder = path.with_suffix("")
        folder.mkdir(exist_ok=True)
        path.rename(folder / "job_info.json")
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "schema_version": 1}))


def test_a_run_made_before_flat_job_files_is_collected_in_its_own_layout(quark, write_config, tmp_path):
    run, old = tmp_path / "run", tmp_path / "old"
    assert quark("submit", write_config(TWO_ITEMS), "-o", run).exit_code == 3
    shutil.copytree(run, old)
    _as_made_before(old)
    assert quark("status", old).exit_code == 3
    finish_job(old / "jobs" / "000-r1-Numbers.AsyncSquare-pre")

    assert quark("collect", old).exit_code == 3
    assert _statuses(old) == {"000-r1": "FINISHED", "001-r1": "INTERRUPTED"}
    finish_job(old / "jobs" / "001-r1-Numbers.AsyncSquare-pre")
    assert quark("collect", old).exit_code == 0

    assert _statuses(old) == {"000-r1": "FINISHED", "001-r1": "FINISHED"}
    jobs = [json.loads(path.read_text()) for path in sorted(old.glob("jobs/*/job_info.json"))]
    assert [(job["key"], job["status"]) for job in jobs] == [
        ("000-r1-Numbers.AsyncSquare-pre", "DONE"),
        ("001-r1-Numbers.AsyncSquare-pre", "DONE"),
    ]
    assert not list(old.glob("jobs/*.json"))
    assert json.loads((old / "run.json").read_text())["schema_version"] == 1


def test_a_job_file_deleted_by_hand_is_noticed_though_the_index_is_current(quark, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", write_config(TWO_ITEMS), "-o", run).exit_code == 3
    job = run / "jobs" / "001-r1-Numbers.AsyncSquare-pre.json"
    job.unlink()
    refused = quark("collect", run)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {job}: missing, yet jobs in {run / 'records' / '001-r1.json'} names it")


def test_status_warns_of_a_job_file_deleted_by_hand_that_collect_refuses(quark, write_config, tmp_path):
    """With the index current, and after a killed command left it behind the files."""
    run = tmp_path / "run"
    assert quark("submit", write_config(TWO_ITEMS), "-o", run).exit_code == 3
    job = run / "jobs" / "001-r1-Numbers.AsyncSquare-pre.json"
    job.unlink()
    warning = f"warning: {job}: missing, yet {run / 'records' / '001-r1.json'} names it; restore it"
    for when in ("index current", "index behind"):
        if when == "index behind":
            (run / ".changing").touch()  # what a killed command leaves
        shown = quark("status", run)
        assert shown.exit_code == 3
        assert shown.stderr.startswith(warning), (when, shown.stderr)
        assert "000-r1-Numbers.AsyncSquare-pre" in shown.stdout
        document = json.loads(quark("status", run, "--json").stdout)
        assert [problem.split(":")[0] for problem in document["problems"]] == [str(job)], when
    job.with_suffix("").mkdir(exist_ok=True)  # a backend's folder of that job does not stand for its file
    assert quark("status", run).stderr.startswith(warning)


def test_stray_files_in_jobs_are_left_alone_in_either_layout(quark, write_config, tmp_path):
    run, old = tmp_path / "run", tmp_path / "old"
    assert quark("submit", write_config(TWO_ITEMS), "-o", run).exit_code == 3
    shutil.copytree(run, old)
    _as_made_before(old)
    for folder in (run, old):
        (folder / "jobs" / "notes.txt").write_text("asked the admins about the queue\n")
        (folder / "jobs" / "foo.json").write_text('{"a": 1}')
        (folder / "jobs" / "x.json").mkdir()
        assert quark("status", folder).exit_code == 3, folder
        assert quark("cancel", folder, "--forget", "000-r1-Numbers.AsyncSquare-pre").exit_code == 0, folder
        finish_job(folder / "jobs" / "001-r1-Numbers.AsyncSquare-pre")
        assert quark("collect", folder).exit_code == 1, folder  # 000-r1 cancelled, 001-r1 finished
        assert _statuses(folder) == {"000-r1": "FAILED", "001-r1": "FINISHED"}
        assert (folder / "jobs" / "notes.txt").read_text() == "asked the admins about the queue\n"
        assert (folder / "jobs" / "foo.json").read_text() == '{"a": 1}'


SAVING_MODULES = """
from toy_modules import Numbers


class SavingNumbers(Numbers):
    uses_store_dir = False  # says so, yet saves: its folder is made all the same

    def save(self, path, iter_count):
        with open(f"{path}/numbers_{iter_count}.txt", "w") as file:
            file.write("saved")
"""


def test_an_application_that_saves_gets_its_folder_whatever_it_says(quark, write_config, tmp_path):
    (tmp_path / "saving_modules.py").write_text(SAVING_MODULES)
    config = write_config(
        """
        application:
          module: saving_modules:SavingNumbers
          submodules: [{name: Double, submodules: [{name: Recorder}]}]
        """
    )
    run = tmp_path / "run"
    assert quark("run", config, "-o", run).exit_code == 0
    assert (run / "benchmarks" / "benchmark_0" / "numbers_1.txt").read_text() == "saved"


def test_a_module_that_writes_though_it_said_it_would_not_is_told_why_it_found_no_folder(quark, write_config, tmp_path):
    (tmp_path / "writing_modules.py").write_text(
        "import os\n"
        "from toy_modules import Numbers\n\n\n"
        "class Writer(Numbers):\n"
        "    uses_store_dir = False\n"
        "    submodule_options = []\n\n"
        "    def preprocess(self, data, config, **kwargs):\n"
        "        with open(os.path.join(kwargs['store_dir'], 'notes.txt'), 'w') as handle:\n"
        "            handle.write('x')\n"
        "        return super().preprocess(data, config, **kwargs)\n"
    )
    config = write_config("application:\n  module: writing_modules:Writer\n  config: {start: [1]}\n")
    run = tmp_path / "run"
    result = quark("run", config, "-o", run, "--quiet")
    assert result.exit_code == 1, result.stderr
    (record,) = json.loads((run / "results.json").read_text())
    assert record["quark_job_status"] == "FAILED"
    assert record["error"].startswith("Writer.preprocess: FileNotFoundError: ")
    assert record["error"].endswith(
        "(store_dir is not made for this stack: its modules all set uses_store_dir = False; "
        "the module that writes there must not)"
    )


def test_stack_names_pad_items_to_three_digits_and_follow_the_backlog():
    """Every stack's name as its record and job files carry it, whatever the backlog's size."""
    from quark_cli.keys import stack_key, stack_keys

    names = stack_keys(1001, 2)
    assert list(names)[:3] == ["000-r1", "000-r2", "001-r1"]
    assert names["099-r2"] == (99, 2) and names["100-r1"] == (100, 1) and names["1000-r2"] == (1000, 2)
    assert list(names) == [stack_key(item, rep) for item in range(1001) for rep in (1, 2)]
    assert stack_keys(0, 3) == {} and list(stack_keys(2, 1)) == ["000-r1", "001-r1"]
