"""A job service made of files, shared by both frameworks so that a job costs each of them the same.

A submission writes ``<service_dir>/<job id>.json`` and is SUBMITTED; ``finish`` plays the service
and marks jobs DONE with their result; ``status`` and ``result`` read one file. The directory is
named by the environment variable ``QUARK_BENCH_SERVICE`` at submission and saved with the job, so
a resume in a later process (or in a copy of the run) finds it without the variable.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

SERVICE_ENV = "QUARK_BENCH_SERVICE"
OPERATIONS = {"square": lambda x: x * x}


def service_dir() -> Path:
    """The service named by ``$QUARK_BENCH_SERVICE``; a submission outside the bench is refused."""
    value = os.environ.get(SERVICE_ENV)
    if not value:
        raise RuntimeError(f"set {SERVICE_ENV} to the bench's service directory")
    return Path(value)


def submit(directory: Path, operation: str, payload: Any, label: str = "") -> str:
    """Queue one job and return its id; ``label`` lets ``finish`` pick which jobs complete."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    job_id = uuid.uuid4().hex
    job = {"id": job_id, "state": "SUBMITTED", "operation": operation, "payload": payload, "label": label}
    (Path(directory) / f"{job_id}.json").write_text(json.dumps(job))
    return job_id


def _job(directory: Path | str, job_id: str) -> dict[str, Any]:
    path = Path(directory) / f"{job_id}.json"
    if not path.is_file():
        return {"id": job_id, "state": "FAILED", "reason": "unknown job"}
    return json.loads(path.read_text())


def status(directory: Path | str, job_id: str) -> str:
    """SUBMITTED, DONE or FAILED."""
    return _job(directory, job_id)["state"]


def result(directory: Path | str, job_id: str) -> Any:
    """The result of a DONE job."""
    job = _job(directory, job_id)
    if job["state"] != "DONE":
        raise RuntimeError(f"job {job_id} is {job['state']}, not DONE")
    return job["result"]


def finish(directory: Path | str, labels: set[str] | None = None) -> int:
    """Play the service: run every SUBMITTED job (only those labelled one of ``labels``, if given)."""
    done = 0
    for path in sorted(Path(directory).glob("*.json")):
        job = json.loads(path.read_text())
        if job["state"] != "SUBMITTED" or (labels is not None and job["label"] not in labels):
            continue
        job.update(state="DONE", result=OPERATIONS[job["operation"]](job["payload"]))
        path.write_text(json.dumps(job))
        done += 1
    return done
