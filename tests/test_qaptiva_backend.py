"""The Qaptiva backend through the real ``qat.qlmaas`` client, against the local stand-in server.

Stories: submit to Qaptiva, the queue holds the jobs, collect later finishes the run with the same
metrics as a local synchronous run; failed, cancelled and lost jobs are recorded with the service's
status; wrong or missing credentials stop with a clear error; an outage loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from qaptiva_server import StandInQaptiva, drop_client_connections

from quark_cli.jobs import qaptiva

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture
def server(client_env: Path) -> Iterator[StandInQaptiva]:
    with StandInQaptiva(hold=True) as standin:
        yield standin
        qaptiva._connections.clear()
        drop_client_connections()


def shipped(name: str, tmp_path: Path, device: dict | None = None, shrink: dict | None = None) -> Path:
    """A shipped config with its device replaced (e.g. pointed at the stand-in) and its lists shrunk."""
    raw = yaml.safe_load((CONFIGS / name).read_text())
    node = raw["application"]
    while True:
        for key, values in (shrink or {}).items():
            if key in node.get("config", {}):
                node["config"][key] = values
        if not node["submodules"][0].get("submodules"):
            break
        node = node["submodules"][0]
    leaf = node["submodules"][0]
    if device is not None:
        leaf.update(device)
    raw["repetitions"] = 1
    path = tmp_path / f"{len(list(tmp_path.glob('*.yml')))}-{name}"
    path.write_text(yaml.safe_dump(raw))
    return path


def at(server: StandInQaptiva) -> dict:
    return {
        "config": {
            "hostname": ["127.0.0.1"],
            "port": [server.port],
            "check_host": [False],
            "seed": [7],
            "shots": [1000],
        }
    }


def results(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())


def jobs(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(run.glob("jobs/*.json"))}


def app_metrics(records: list[dict]) -> list[dict]:
    keep = (
        "population",
        "p_all_zero",
        "circuit_depth",
        "best_cut",
        "optimal_cut",
        "approximation_ratio",
        "expected_cut_ratio",
        "best_bitstring",
    )
    return [{k: r["module"][k] for k in keep if k in r["module"]} for r in records]


@pytest.mark.parametrize(
    ("config", "shrink"),
    [("ghz-qaptiva.yml", {"n_qubits": [3, 5]}), ("maxcut-qaptiva.yml", {"nodes": [4, 5], "p": [1]})],
)
def test_submit_status_collect_matches_the_local_run(quark, server, tmp_path, config, shrink):
    run = tmp_path / "run"
    submitted = quark("submit", shipped(config, tmp_path, at(server), shrink), "-o", run)
    assert submitted.exit_code == 3, submitted.stderr
    assert submitted.stdout.strip() == str(run), "the client's prints must not reach our stdout"
    ids = [job["info"]["id"] for job in jobs(run).values()]
    assert sorted(ids) == sorted(server.job_ids()) and len(ids) == 2
    assert all(set(job["info"]) == {"id", "host", "port"} for job in jobs(run).values())

    assert quark("collect", run).exit_code == 3, "the queue still holds them"
    status = json.loads(quark("status", run, "--json").stdout)
    assert status["job_totals"] == {"SUBMITTED": 2}

    server.release_all()
    for job_id in ids:
        server.wait_for(job_id, "done")
    collected = quark("collect", run)
    assert collected.exit_code == 0, collected.stdout + collected.stderr
    assert {r["quark_job_status"] for r in results(run)} == {"FINISHED"}

    local = quark("run", shipped(config.replace("-qaptiva", ""), tmp_path, None, shrink), "-o", tmp_path / "sync")
    assert local.exit_code == 0
    assert app_metrics(results(run)) == app_metrics(results(tmp_path / "sync"))


def test_failed_cancelled_and_lost_jobs_fail_their_stacks_with_the_status(quark, server, tmp_path):
    run = tmp_path / "run"
    quark("submit", shipped("ghz-qaptiva.yml", tmp_path, at(server), {"n_qubits": [2, 3, 4]}), "-o", run)
    first, second, third = sorted(server.job_ids(), key=lambda i: int(i[3:]))
    server.fail_job(first, "QPU exploded")
    server.cancel(second)
    server.lose_job(third)

    collected = quark("collect", run)
    assert collected.exit_code == 1
    by_id = {job["info"]["id"]: job for job in jobs(run).values()}
    assert (by_id[first]["status"], by_id[first]["error"]) == ("FAILED", "FAILED")
    assert (by_id[second]["status"], by_id[second]["error"]) == ("CANCELLED", "CANCELLED")
    assert (by_id[third]["status"], by_id[third]["error"]) == ("FAILED", "UNKNOWN_JOB")
    assert [r["quark_job_status"] for r in results(run)] == ["FAILED"] * 3
    submits = server.count("submit_batch")
    assert quark("collect", run).exit_code == 1
    assert server.count("submit_batch") == submits, "failed jobs are not resubmitted"


def test_wrong_credentials_stop_with_exit_2_and_lose_nothing(quark, server, tmp_path, monkeypatch):
    monkeypatch.setenv("QLM_PASSWD", "not-the-password")
    run = tmp_path / "run"
    result = quark("submit", shipped("ghz-qaptiva.yml", tmp_path, at(server)), "-o", run)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Qaptiva at 127.0.0.1:")
    assert "refused the credentials" in result.stderr and "Traceback" not in result.stderr
    assert server.job_ids() == [] and jobs(run) == {}

    monkeypatch.setenv("QLM_PASSWD", "wonderland")
    assert quark("collect", run).exit_code == 3, "collect submits what the failed submit did not"
    assert len(server.job_ids()) == 4


def test_missing_credentials_never_prompt(quark, server, tmp_path, monkeypatch):
    monkeypatch.delenv("QLM_USER")
    monkeypatch.delenv("QLM_PASSWD")
    result = quark("submit", shipped("ghz-qaptiva.yml", tmp_path, at(server)), "-o", tmp_path / "run")
    assert result.exit_code == 2
    assert "no Qaptiva credentials for 127.0.0.1: set QLM_USER and QLM_PASSWD" in result.stderr
    assert server.logins == 0


def test_outage_loses_nothing_and_the_job_is_collected_later(quark, server, tmp_path):
    run = tmp_path / "run"
    quark("submit", shipped("ghz-qaptiva.yml", tmp_path, at(server), {"n_qubits": [3]}), "-o", run)
    server.release_all()
    (job_id,) = server.job_ids()
    server.wait_for(job_id, "done")
    server.go_down()
    qaptiva._connections.clear()

    down = quark("collect", run)
    assert down.exit_code == 3
    assert "Could not connect" in down.stdout
    assert [job["status"] for job in jobs(run).values()] == ["SUBMITTED"]

    server.come_back()
    assert quark("collect", run).exit_code == 0
    assert results(run)[0]["module"]["population"] == 1.0
