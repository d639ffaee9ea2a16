"""The IBM Quantum backend through the real ``qiskit-ibm-runtime`` client, against the local stand-in.

Stories: submit to IBM Quantum, close the laptop (no quark process while the stand-in finishes the
jobs), collect later; the counts are the stand-in's seeded simulation with qubit 0 first. Failed,
cancelled and unknown jobs fail their stacks with the service's reason; a 502 after the job was
created leaves one job recorded and the copy cancelled; a stalled server is a bounded error; a wrong
key, IAM down and API down are three messages and lose nothing; a submit killed right after
``POST /jobs`` is adopted by tag; the README's crontab line collects under cron's environment; no
token lands in the run directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ibm_server import StandInIBM

from quark_cli.jobs import ibm_service

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInIBM]:
    """The stand-in, held (jobs stay queued until released), with the client's env pointed at it."""
    with StandInIBM(delay=0.2) as standin:
        standin.hold_all()
        for name, value in standin.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("QISKIT_IBM_TOKEN", standin.api_key)
        for name in ("QISKIT_IBM_URL", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL"):
            monkeypatch.delenv(name, raising=False)
        yield standin
        ibm_service.forget()


def config(server: StandInIBM, tmp_path: Path, name: str = "ghz-ibm.yml", **shrink: list) -> Path:
    """A shipped IBM config pointed at the stand-in, its lists shrunk to ``shrink``."""
    raw = yaml.safe_load((CONFIGS / name).read_text())
    node = raw["application"]
    while node.get("submodules"):
        for key, values in shrink.items():
            if key in node.get("config", {}):
                node["config"][key] = values
        node = node["submodules"][0]
    node["config"].update(
        {"backend": [server.backend_name], "url": [server.url], "instance": [server.instance], "timeout": [10]}
    )
    path = tmp_path / f"{len(list(tmp_path.glob('*.yml')))}-{name}"
    path.write_text(yaml.safe_dump(raw))
    return path


def results(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())


def jobs(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(run.glob("jobs/*.json"))}


def leaf(record: dict) -> dict:
    """The device's level of a record (QUARK 2 nests each module's level in its parent's ``submodule``)."""
    level = record["module"]
    while level.get("submodule"):
        level = level["submodule"]
    return level


def finish_all(server: StandInIBM) -> None:
    server.release_all()
    for job_id in server.job_ids():
        server.wait_for(job_id, "Completed")


def counts_of(server: StandInIBM, job_id: str) -> dict[str, int]:
    """The stand-in's simulated counts of a job, qubit 0 first (ours), as quark must report them."""
    return {key[::-1]: value for key, value in server.counts(job_id)[0].items()}


@pytest.mark.parametrize(
    ("name", "shrink"), [("ghz-ibm.yml", {"n_qubits": [3, 5]}), ("maxcut-ibm.yml", {"nodes": [4], "p": [1, 2]})]
)
def test_submit_then_collect_after_the_queue_finished(quark_process, server, tmp_path, name, shrink):
    run = tmp_path / "run"
    submitted = quark_process("submit", config(server, tmp_path, name, **shrink), "-o", run)
    assert submitted.returncode == 3, submitted.stderr
    assert submitted.stdout.strip() == str(run)
    saved = jobs(run)
    ids = [job["info"]["id"] for job in saved.values()]
    assert sorted(ids) == sorted(server.job_ids()) and len(ids) == 2
    for job in saved.values():
        assert {"id", "backend", "instance", "url"} <= set(job["info"])
        assert job["info"]["backend"] == server.backend_name and job["info"]["url"] == server.url
    assert all(server.job(job_id)["state"]["status"] == "Queued" for job_id in ids)

    finish_all(server)  # no quark process runs while the service finishes the jobs
    collected = quark_process("collect", run)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    records = results(run)
    assert {r["quark_job_status"] for r in records} == {"FINISHED"}
    by_id = {job["info"]["id"]: job for job in jobs(run).values()}
    for record in records:
        device = leaf(record)
        job_id = device["job_info"]["id"]
        assert device["backend"] == server.backend_name
        assert device["qubits_used"] >= 3 and device["two_qubit_gates"] >= 1
        assert by_id[job_id]["info"].get("service_finished")
    for record in records:
        job_id = leaf(record)["job_info"]["id"]
        if name == "ghz-ibm.yml":
            assert record["module"]["population"] == pytest.approx(1.0)
        else:  # the best cut is read from the service's counts, turned to qubit 0 first
            assert record["module"]["best_bitstring"] in counts_of(server, job_id)
            assert 0 < record["module"]["approximation_ratio"] <= 1
    for job_id in ids:
        assert sum(counts_of(server, job_id).values()) == 1000
    text = "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
    assert server.api_key not in text, "no token in the run directory"


def test_counts_are_the_services_with_qubit_0_first(quark, server, tmp_path):
    run = tmp_path / "run"
    assert quark("submit", config(server, tmp_path, n_qubits=[3]), "-o", run).exit_code == 3
    finish_all(server)
    assert quark("collect", run).exit_code == 0
    (job_id,) = server.job_ids()
    output_counts = json.loads((run / "results.json").read_text())[0]
    expected = counts_of(server, job_id)
    assert set(expected) == {"000", "111"}
    assert output_counts["module"]["p_all_one"] == expected["111"] / 1000
    assert output_counts["module"]["p_all_zero"] == expected["000"] / 1000


def test_failed_cancelled_and_unknown_jobs_fail_their_stacks_with_the_reason(quark, server, tmp_path):
    run = tmp_path / "run"
    quark("submit", config(server, tmp_path, n_qubits=[2, 3, 4, 5]), "-o", run)
    first, second, third, fourth = sorted(server.job_ids(), key=lambda i: server.job(i)["created"])
    server.fail_job(first, reason="calibration failed")
    server.cancel_job(second)
    server.lose_job(third)
    server.cancel_too_long(fourth)

    collected = quark("collect", run)
    assert collected.exit_code == 1, collected.stdout + collected.stderr
    by_id = {job["info"]["id"]: job for job in jobs(run).values()}
    assert by_id[first]["status"] == "FAILED" and "calibration failed" in by_id[first]["error"]
    assert (by_id[second]["status"], by_id[second]["error"]) == ("CANCELLED", "CANCELLED")
    assert by_id[third]["status"] == "FAILED" and "does not know job" in by_id[third]["error"]
    assert by_id[fourth]["status"] == "FAILED" and "1305" in by_id[fourth]["error"]
    assert [r["quark_job_status"] for r in results(run)] == ["FAILED"] * 4
    posts = len(server.calls("POST /api/v1/jobs"))
    assert quark("collect", run).exit_code == 1
    assert len(server.calls("POST /api/v1/jobs")) == posts, "failed jobs are not resubmitted"


def test_a_502_after_the_job_was_created_leaves_one_job_and_cancels_the_copy(quark, server, tmp_path):
    server.fail_next(1, code=502, path="POST /jobs", after=True)
    run = tmp_path / "run"
    assert quark("submit", config(server, tmp_path, n_qubits=[3]), "-o", run).exit_code == 3
    assert len(server.job_ids()) == 2, "the client resent POST /jobs by itself"
    ((job,),) = [list(jobs(run).values())]
    kept = job["info"]["id"]
    (copy,) = [job_id for job_id in server.job_ids() if job_id != kept]
    assert job["info"]["duplicates_cancelled"] == [copy]
    assert server.job(copy)["state"]["status"] == "Cancelled"
    finish_all_but_cancelled(server)
    assert quark("collect", run).exit_code == 0


def finish_all_but_cancelled(server: StandInIBM) -> None:
    server.release_all()
    for job_id in server.job_ids():
        if server.job(job_id)["state"]["status"] != "Cancelled":
            server.wait_for(job_id, "Completed")


def test_a_stalled_server_is_a_bounded_error_and_the_job_is_collected_later(quark, server, tmp_path):
    run = tmp_path / "run"
    quark("submit", config(server, tmp_path, n_qubits=[3]), "-o", run)
    finish_all(server)
    server.set_stall(60)
    ibm_service.forget()
    start = time.monotonic()
    stalled = quark("collect", run)
    assert stalled.exit_code == 3, stalled.stdout + stalled.stderr
    assert time.monotonic() - start < 40
    assert "did not answer within 10 s" in stalled.stdout + stalled.stderr
    assert [job["status"] for job in jobs(run).values()] == ["SUBMITTED"]

    server.set_stall(0)
    assert quark("collect", run).exit_code == 0
    assert results(run)[0]["quark_job_status"] == "FINISHED"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("wrong key", "error: IBM Cloud IAM at https://127.0.0.1:{iam_port} refused the API key (HTTP 400)"),
        ("iam down", "error: cannot reach IBM Cloud IAM at https://127.0.0.1:{iam_port}"),
        ("api down", "error: cannot reach IBM Quantum at {url}"),
    ],
)
def test_key_iam_and_api_faults_are_three_messages_and_lose_nothing(
    quark, server, tmp_path, monkeypatch, fault, message
):
    if fault == "wrong key":
        monkeypatch.setenv("QISKIT_IBM_TOKEN", "not-the-key")
    elif fault == "iam down":
        server.go_down("iam")
    else:
        server.go_down("api")
    run = tmp_path / "run"
    result = quark("submit", config(server, tmp_path, n_qubits=[3, 4]), "-o", run)
    assert result.exit_code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message.format(iam_port=server.iam_port, url=server.url)), line
    assert server.job_ids() == [] and jobs(run) == {}

    monkeypatch.setenv("QISKIT_IBM_TOKEN", server.api_key)
    server.come_back("iam")
    server.come_back("api")
    ibm_service.forget()
    assert quark("collect", run).exit_code == 3, "collect submits what the failed submit did not"
    assert len(server.job_ids()) == 2


def test_a_revoked_token_stops_collect_with_exit_2_and_keeps_the_jobs(quark, server, tmp_path):
    run = tmp_path / "run"
    quark("submit", config(server, tmp_path, n_qubits=[3]), "-o", run)
    server.reject_tokens(True)
    ibm_service.forget()
    refused = quark("collect", run)
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert f"IBM Quantum at {server.url} refused the token (HTTP 401)" in refused.stderr
    assert [job["status"] for job in jobs(run).values()] == ["SUBMITTED"]

    server.reject_tokens(False)
    finish_all(server)
    assert quark("collect", run).exit_code == 0


def test_quark_cancel_cancels_on_the_service(quark, server, tmp_path):
    run = tmp_path / "run"
    quark("submit", config(server, tmp_path, n_qubits=[3]), "-o", run)
    (job_id,) = server.job_ids()
    cancelled = quark("cancel", run)
    assert cancelled.exit_code == 0, cancelled.stdout + cancelled.stderr
    assert server.job(job_id)["state"]["status"] == "Cancelled"
    assert [job["status"] for job in jobs(run).values()] == ["CANCELLED"]


def test_a_submit_killed_right_after_post_jobs_is_adopted_not_doubled(quark_process, server, tmp_path):
    run = tmp_path / "run"
    server.set_stall(60, path="POST /jobs")
    env = {**os.environ}
    process = subprocess.Popen(
        [sys.executable, "-m", "quark_cli.cli", "submit", str(config(server, tmp_path, n_qubits=[3])), "-o", str(run)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not server.job_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.job_ids(), "the job reached the service"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    server.set_stall(0, path="POST /jobs")

    finish_all(server)
    collected = quark_process("collect", run)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert len(server.job_ids()) == 1, "adopted by its tag, not submitted again"
    ((job,),) = [list(jobs(run).values())]
    assert job["info"]["id"] == server.job_ids()[0]
    assert results(run)[0]["quark_job_status"] == "FINISHED"


def test_the_crontab_line_collects_under_crons_environment_with_a_saved_account(
    quark_process, server, tmp_path, monkeypatch
):
    bin_dir = REPO / ".venv" / "bin"
    if Path(sys.executable).parent != bin_dir:
        pytest.skip("the README's cron line names the project's .venv; this test runs from another interpreter")
    home = tmp_path / "cron-home"
    (home / "quark-runs").mkdir(parents=True)
    (home / "quark-cli").symlink_to(REPO)
    save = (
        "from qiskit_ibm_runtime import QiskitRuntimeService as S; "
        f"S.save_account(channel='ibm_quantum_platform', token={server.api_key!r}, instance={server.instance!r}, "
        "set_as_default=True)"
    )
    subprocess.run([sys.executable, "-c", save], env={**os.environ, "HOME": str(home)}, check=True)
    run = home / "quark-runs" / "ghz-ibm"
    assert quark_process("submit", config(server, tmp_path, n_qubits=[3]), "-o", run).returncode == 3
    finish_all(server)

    (cron_line,) = [
        line.split(" ", 5)[5] for line in (REPO / "README.md").read_text().splitlines() if line.startswith("*/10 ")
    ]
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", "LOGNAME": "root", **server.env()}
    done = subprocess.run(
        ["/bin/sh", "-c", cron_line],
        env=cron_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(run) in done.stdout and "1 finished" in done.stdout
    assert results(run)[0]["quark_job_status"] == "FINISHED"
    text = "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
    assert server.api_key not in text


def test_quark_run_waits_for_the_ibm_jobs_in_one_process(quark, server, tmp_path):
    server.release_all()
    run = tmp_path / "run"
    result = quark("run", config(server, tmp_path, n_qubits=[2, 3]), "-o", run)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [r["module"]["population"] for r in results(run)] == [1.0, 1.0]
    assert len(server.job_ids()) == 2


def test_a_backend_the_instance_does_not_offer_is_exit_2_naming_those_it_does(quark, server, tmp_path):
    path = config(server, tmp_path, n_qubits=[3])
    path.write_text(path.read_text().replace(server.backend_name, "ibm_nowhere"))
    result = quark("submit", path, "-o", tmp_path / "run")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert f"error: backend 'ibm_nowhere' is not available on instance {server.instance}; available: " in result.stderr
    assert server.backend_name in result.stderr
    assert server.job_ids() == []
    assert "uncertain" not in result.stdout + result.stderr


def test_a_fault_before_the_job_is_sent_submits_it_at_the_next_collect(quark, server, tmp_path):
    server.fail_next(6, code=502, path="GET /backends/*/properties")  # the client tries 6 times
    run = tmp_path / "run"
    result = quark("submit", config(server, tmp_path, n_qubits=[3, 4]), "-o", run)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert server.job_ids() == [] and jobs(run) == {}
    ibm_service.forget()
    assert quark("collect", run).exit_code == 3, "submitted now"
    finish_all(server)
    assert quark("collect", run).exit_code == 0
    assert {r["quark_job_status"] for r in results(run)} == {"FINISHED"}
