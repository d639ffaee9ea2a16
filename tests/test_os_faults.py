"""The machine's faults are the user's to fix, not quark's bugs: a full disk, a run quark may not
write, names too long for the file system. Each is one line naming the path and the cause, exit 74,
nothing lost, no temporary left; ``collect --all`` reports the run and goes on with the others.

The disk-full and read-only cases run for real on a small tmpfs and a read-only bind mount, the
permission case as a user who is not root; they skip with the reason where the machine cannot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from toy_modules import finish_job

TESTS = Path(__file__).resolve().parent
NOBODY = 65534

SYNC = """
application:
  module: toy_modules:Numbers
  config: {start: [1, 2]}
  submodules:
    - name: Double
      submodules: [{name: Recorder}]
repetitions: 40
"""

ASYNC = """
application:
  module: toy_modules:Numbers
  submodules:
    - name: Double
      submodules: [{name: AsyncSquare}]
"""


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def small_disk():
    """A 512 kB tmpfs, nearly full: the next few dozen kB written fail with ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = Path(tempfile.mkdtemp(prefix="quark-full-"))
    try:
        _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder))
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    (folder / "filler").write_bytes(b"\0" * 440 * 1024)
    yield folder
    subprocess.run(["umount", str(folder)], check=False)
    folder.rmdir()


def _leftovers(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp"))


def test_a_full_disk_is_one_line_exit_74_and_collect_finishes_once_there_is_room(
    quark_process, write_config, small_disk
):
    run = small_disk / "run"
    config = write_config(SYNC)
    result = quark_process("run", config, "-o", run, "--quiet")
    assert result.returncode == 74, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {run}/") and "no space left on its file system; free some" in line
    assert "Logging error" not in result.stderr and _leftovers(run) == []
    records = list((run / "records").glob("*.json"))
    assert 0 < len(records) < 80  # stopped part-way; what was written is whole
    for record in records:
        assert json.loads(record.read_text())["quark_job_status"] == "FINISHED"

    plots = quark_process("report", run, "--plots")  # a figure on the full disk: the same class of fault
    assert plots.returncode == 74 and "no space left on its file system" in plots.stderr, plots.stderr
    assert _leftovers(run) == []

    (small_disk / "filler").unlink()
    collected = quark_process("collect", run)
    assert collected.returncode == 0, collected.stderr
    reference = Path(config).parent / "reference"
    assert quark_process("run", config, "-o", reference, "--quiet").returncode == 0
    strip = lambda r: {k: r[k] for k in ("stack", "quark_job_status")} | {"total": r["module"]["total"]}  # noqa: E731
    finished = [strip(r) for r in json.loads((run / "results.json").read_text())]
    assert finished == [strip(r) for r in json.loads((reference / "results.json").read_text())]


def test_a_read_only_run_is_reported_and_collect_all_goes_on(quark_process, write_config, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    root = tmp_path / "runs"
    for name in ("a-read-only", "b-fine"):
        assert quark_process("submit", write_config(ASYNC), "-o", root / name).returncode == 3
    for job in root.glob("*/jobs/*.json"):
        finish_job(job.with_suffix(""))
    frozen = root / "a-read-only"
    try:
        _mount("--bind", str(frozen), str(frozen))
        _mount("-o", "remount,ro,bind", str(frozen))
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot make a read-only bind mount here: {error}")
    try:
        result = quark_process("collect", "--all", root)
    finally:
        subprocess.run(["umount", str(frozen)], check=False)
    assert result.returncode == 74, result.stderr
    assert f"{frozen}/.lock: its file system is read-only" in result.stderr
    assert "b-fine: 1 finished" in result.stdout  # the run after it was collected
    assert quark_process("collect", frozen).returncode == 0  # and once writable again, this one too


@pytest.fixture
def passable_checkout():
    """Let another user reach quark-cli's code: a clone in a private folder (``mktemp -d`` makes 0700
    folders) gets others' search permission on its folders for the test, taken back afterwards."""
    changed = []
    for folder in (TESTS.parent, *TESTS.parent.parents) if os.geteuid() == 0 else ():
        mode = folder.stat().st_mode
        if not mode & 0o001:
            os.chmod(folder, mode | 0o001)
            changed.append((folder, mode))
    yield
    for folder, mode in changed:
        os.chmod(folder, mode)


def test_a_run_of_another_user_is_reported_and_collect_all_goes_on(quark_process, write_config, passable_checkout):
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    shared = Path(tempfile.mkdtemp(prefix="quark-users-"))
    try:
        os.chmod(shared, 0o755)
        home = shared / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        root = shared / "runs"
        root.mkdir()
        os.chmod(root, 0o777)
        config = shared / "config.yml"
        config.write_text(ASYNC)
        os.chmod(config, 0o644)
        assert quark_process("submit", config, "-o", root / "a-root").returncode == 3
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable]
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(TESTS)}
        mine = subprocess.run(
            [*as_nobody, "-m", "quark_cli.cli", "submit", config, "-o", root / "b-nobody"],
            capture_output=True,
            text=True,
            env=env,
            cwd=home,
        )
        if mine.returncode == 126 or "Permission denied" in mine.stderr and "python" in mine.stderr:
            pytest.skip(f"this Python cannot run as another user: {mine.stderr.strip()[:200]}")
        assert mine.returncode == 3, mine.stderr
        for job in (root / "b-nobody").glob("jobs/*.json"):
            finish_job(job.with_suffix(""))

        def as_user(*args: object) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*as_nobody, "-m", "quark_cli.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=home
            )

        records = root / "b-nobody" / "records"
        os.chmod(records / "000-r1.json", 0o444)  # a record of its own run it may not write to,
        os.chmod(records, 0o555)  # in a folder it may not write to either
        blocked = as_user("collect", root / "b-nobody")
        assert blocked.returncode == 74, blocked.stderr
        assert f"{records}/000-r1.json: permission denied" in blocked.stderr  # the file, not a temporary
        assert not list((root / "b-nobody" / ".staging").glob("*"))
        os.chmod(records, 0o755)
        os.chmod(records / "000-r1.json", 0o644)
        status = as_user("status", root / "a-root")
        assert status.returncode == 74 and status.stderr.startswith(f"error: {root / 'a-root'}/run.json: permission")
        result = as_user("collect", "--all", root)
        assert result.returncode == 74, result.stderr
        assert f"{root / 'a-root'}/run.json: permission denied; check the owner and permissions" in result.stderr
        assert "b-nobody: 1 finished" in result.stdout
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_names_too_long_for_a_file_are_shortened_the_same_way_every_time(quark, write_config, tmp_path, monkeypatch):
    long_name = "Numbers" + "WithAVeryLongDescriptiveName" * 10
    config = write_config(
        ASYNC.replace("module: toy_modules:Numbers", f"module: toy_modules:Numbers\n  name: {long_name}")
    )
    summary = json.loads(quark("validate", config, "--json").stdout)
    folders = summary["branches"][0]["job_folders"]
    assert set(folders) == {long_name, f"{long_name}.Double", f"{long_name}.Double.AsyncSquare"}
    run = tmp_path / "run"
    assert quark("submit", config, "-o", run).exit_code == 3
    (job_file,) = (run / "jobs").glob("*.json")
    job = job_file.with_suffix("")
    assert len(job_file.name.encode()) < 160 and job.name.startswith("000-r1-NumbersWithAVeryLong")
    assert job.name == folders[f"{long_name}.Double.AsyncSquare"].replace("<stack>", "000-r1").replace("<phase>", "pre")
    finish_job(job)
    assert quark("collect", run).exit_code == 0

    long_config = Path(config).with_name("c" * 240 + ".yml")
    long_config.write_text(Path(config).read_text())
    monkeypatch.setenv("QUARK_RUNS_DIR", str(tmp_path / "runs"))
    submitted = quark("submit", long_config)
    assert submitted.exit_code == 3, submitted.stderr
    (made,) = (tmp_path / "runs").iterdir()
    assert len(made.name.encode()) < 160 and made.name.startswith("c" * 50)


@pytest.mark.parametrize(
    ("command", "where", "why"),
    [
        (("submit", "CONFIG", "-o", "FILE/run"), "FILE/run", "a part of its path is a file, not a folder"),
        (("report", "RUN", "-f", "csv", "-o", "FILE/report.csv"), "FILE/report.csv", "a part of its path is a file"),
        (("report", "RUN", "-f", "markdown", "-o", "DIR"), "DIR", "is a folder, not a file; check the path"),
        (("report", "RUN", "-f", "html", "-o", "/proc/report.html"), "/proc/report.html", "no such file or folder"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_one_line_exit_2(
    quark_process, write_config, tmp_path, command, where, why
):
    run = tmp_path / "run"
    assert quark_process("run", write_config(SYNC.replace("40", "1")), "-o", run, "--quiet").returncode == 0
    a_file, a_dir = tmp_path / "a-file", tmp_path / "a-dir"
    a_file.write_text("not a folder")
    a_dir.mkdir()
    names = {"CONFIG": str(write_config(SYNC)), "RUN": str(run), "FILE": str(a_file), "DIR": str(a_dir)}

    def filled(text: str) -> str:
        for name, value in names.items():
            text = text.replace(name, value)
        return text

    result = quark_process(*map(filled, command))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {filled(where)}: {why}"), line
