"""Times mean what the clock did: unknown when stamps are out of order, never a 0 that looks measured.

Stories (issue 15): the machine's clock is stepped back an hour between ``quark submit`` and a
later command (``status`` used to show an age of -3600 s, ``report`` a turnaround of 0); a SLURM
job queued across the autumn daylight-saving change (SLURM's local times without offset made 20
minutes of queue 0); ``quark run --timeout 0`` waited an hour.

The stepped clock is real for the processes under test: libfaketime (``FAKETIME=+1h``) moves their
wall clock, not their monotonic clock, as NTP stepping the system clock would. Without libfaketime
these tests install it (Debian's ``libfaketime``, as root with apt-get) or skip; under CI=true they fail.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from debian import needed_package
from toy_modules import finish_job

from quark_cli.jobs.slurm_commands import slurm_stamp
from quark_cli.stamps import age_seconds, interval

CONTROLLED = """
application:
  module: toy_modules:Numbers
  config: {start: [1]}
  submodules:
    - name: Double
      submodules:
        - name: AsyncSquare
"""


def _faketime_library() -> str | None:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1")
    return found[0] if found else None


@pytest.fixture(scope="session")
def faketime() -> str:
    """The path of libfaketime, installed first when missing and this is a root Debian machine."""
    return needed_package("libfaketime", _faketime_library, "the clock tests", timeout=600)


def _shifted(library: str, offset: str) -> dict[str, str]:
    """The environment of a process whose wall clock is ``offset`` (``+1h``) from the real one."""
    return {"LD_PRELOAD": library, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _job_dir(run: Path) -> Path:
    (folder,) = [path.with_suffix("") for path in run.glob("jobs/*.json")]
    return folder


def test_the_shifted_clock_is_real_for_the_process(faketime):
    probe = "import time; print(time.time())"
    shifted = subprocess.run(
        ["python3", "-c", probe], env={**os.environ, **_shifted(faketime, "+1h")}, capture_output=True, text=True
    )
    assert abs(float(shifted.stdout) - time.time() - 3600) < 60


def test_status_after_the_clock_was_stepped_back_shows_the_age_as_unknown(
    faketime, quark_process, write_config, tmp_path
):
    run = tmp_path / "run"
    submitted = quark_process("submit", write_config(CONTROLLED), "-o", run, env=_shifted(faketime, "+1h"))
    assert submitted.returncode == 3, submitted.stderr

    status = quark_process("status", run, "--json")
    (job,) = json.loads(status.stdout)["jobs"]
    assert job["age_seconds"] is None
    assert json.loads(status.stdout)["unknown_ages"] == 1

    table = quark_process("status", run)
    (row,) = [line for line in table.stdout.splitlines() if "SUBMITTED" in line]
    assert row.split()[-1] == "-"  # the age column, the last
    assert "1 job age(s) unknown (-)" in " ".join(table.stdout.split())

    later = quark_process("status", run, "--json", env=_shifted(faketime, "+3900"))
    (job,) = json.loads(later.stdout)["jobs"]
    assert 250 < job["age_seconds"] < 400  # once the clock is past the stamp again, the age is measured


@pytest.mark.parametrize(
    ("stamp", "age"),
    [
        ("2026-11-29T18:25:00.123+00:00", 1.000456),
        ("2026-11-29T19:25:00.123+01:00", 1.000456),  # another offset, the same instant
        ("2026-11-28T18:25:01.123456+00:00", 86400.0),
        ("2026-11-29T18:25:01.124+00:00", None),  # a millisecond after now: in the future
        ("2026-11-29T18:25:01.123", None),  # no offset: not comparable with an aware now
        ("2026-11-29T182501.1.123+00:00", None),
        ("2026-11-29T18:25,01.291+00:00", None),
        ("2026-11-29T18:25:01.\u0661\u0662\u0663+00:00", None),  # digits, not ASCII ones
        ("2026-13-29T18:25:01.123+00:00", None),  # no 13th month
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_status_ages_are_measured_only_between_comparable_ordered_stamps(stamp, age):
    now = datetime(2026, 11, 29, 18, 25, 1, 123456, tzinfo=UTC)
    assert age_seconds(stamp, now) == age
    assert age_seconds(stamp, now) == interval(stamp, now).seconds  # what report's intervals say


def test_a_turnaround_across_a_clock_stepped_back_is_unknown_not_zero(faketime, quark_process, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark_process("submit", write_config(CONTROLLED), "-o", run).returncode == 3
    finish_job(_job_dir(run))
    collected = quark_process("collect", run, env=_shifted(faketime, "-1h"))
    assert collected.returncode == 0, collected.stderr

    report = json.loads(quark_process("report", run, "--json").stdout)
    (row,) = report["rows"]
    (job,) = row["jobs"]
    assert job["turnaround_s"] is None and job["timing"] is None
    assert job["unknown"] == ["turnaround_s"] and row["unknown"] == ["turnaround_s"]
    assert row["turnaround_s"] is None
    assert report["unknown_intervals"] == 1
    (item,) = report["items"]
    assert item["turnaround_s"] == {"mean": None, "std": None, "n": 0, "missing": 1}

    text = " ".join(quark_process("report", run).stdout.split())
    assert "1 job time(s) unknown (shown as -)" in text
    markdown = quark_process("report", run, "--format", "markdown").stdout
    header = next(line for line in markdown.splitlines() if line.startswith("| stack"))
    line = next(line for line in markdown.splitlines() if line.startswith("| 000-r1"))
    cells = dict(zip(header.split(" | "), line.split(" | "), strict=True))
    assert cells["turnaround (s)"] == "-"


def test_a_turnaround_measured_on_one_clock_is_reported(quark_process, write_config, tmp_path):
    run = tmp_path / "run"
    assert quark_process("submit", write_config(CONTROLLED), "-o", run).returncode == 3
    finish_job(_job_dir(run))
    assert quark_process("collect", run).returncode == 0
    (row,) = json.loads(quark_process("report", run, "--json").stdout)["rows"]
    assert row["jobs"][0]["timing"] == "observed"
    assert 0 < row["turnaround_s"] < 60 and row["unknown"] == []


# -- SLURM times ---------------------------------------------------------------------------------------

#: Europe/Berlin, 25 October 2026: at 03:00 CEST the clocks go back to 02:00 CET (01:00 UTC).
SUBMITTED_UTC = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50 CEST
STARTED_UTC = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, twenty minutes later


def test_a_slurm_job_queued_across_the_autumn_change_queued_1200_s():
    """squeue and sacct are asked for epoch seconds (SLURM_TIME_FORMAT=%s): no zone to guess."""
    submitted = slurm_stamp(str(int(SUBMITTED_UTC.timestamp())))
    started = slurm_stamp(str(int(STARTED_UTC.timestamp())))
    assert submitted == "2026-10-25T00:50:00+00:00" and started == "2026-10-25T01:10:00+00:00"
    assert interval(submitted, started).seconds == 1200


def test_slurm_local_times_in_the_repeated_hour_are_unknown_not_zero(monkeypatch):
    """A SLURM that ignores the requested format prints local time without offset: in the hour the
    autumn change repeats, the later stamp can read earlier. That is unknown, never a queue of 0."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        submitted, started = slurm_stamp("2026-10-25T02:50:00"), slurm_stamp("2026-10-25T02:10:00")
        assert submitted is not None and started is not None
        gap = interval(submitted, started)
        assert gap.seconds is None and gap.unknown
        assert slurm_stamp("2026-07-01T12:00:00") == "2026-07-01T10:00:00+00:00"  # CEST: UTC+2
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    for missing in ("N/A", "Unknown", "None", "0", ""):
        assert slurm_stamp(missing) is None


# -- waiting -------------------------------------------------------------------------------------------


def test_run_with_timeout_0_does_not_wait(quark_process, write_config, tmp_path):
    run = tmp_path / "run"
    done = quark_process("run", write_config(CONTROLLED), "-o", run, "--timeout", "0", timeout=60)
    assert done.returncode == 3, done.stderr
    (record,) = json.loads((run / "results.json").read_text())
    assert record["quark_job_status"] == "INTERRUPTED"
    finish_job(_job_dir(run))
    assert quark_process("collect", run, "--wait", "--timeout", "0").returncode == 0


def test_a_negative_timeout_is_refused(quark, write_config, tmp_path):
    result = quark("run", write_config(CONTROLLED), "-o", tmp_path / "run", "--timeout", "-1")
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()
