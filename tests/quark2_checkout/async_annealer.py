"""The seed's ``MyAsyncUpgradedSolver`` over QUARK 2's own ``Annealer``, written as the specification shows it.

Needs a QUARK 2 checkout's ``src`` on ``PYTHONPATH`` (and dwave-samplers): the annealing of each
QUBO runs as a job in a detached process on this machine, so ``quark submit`` returns while it
anneals and ``quark collect`` picks the sample up later. The service writes its answer as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from modules.solvers.annealer import Annealer

from quark_cli import AsyncCore, AsyncJobManager, AsyncStatus

# What the service runs for one job: anneal the QUBO, write the lowest-energy sample (or the error).
SERVICE = """
import json, os, sys
folder = sys.argv[1]
try:
    import dwave.samplers
    job = json.load(open(os.path.join(folder, "qubo.json")))
    qubo = {(i, j): weight for i, j, weight in job["Q"]}
    response = dwave.samplers.SimulatedAnnealingSampler().sample_qubo(qubo, num_reads=job["num_reads"])
    best = response.lowest().first
    with open(os.path.join(folder, "partial.json"), "w") as out:
        json.dump({"sample": {str(k): int(v) for k, v in best.sample.items()}, "energy": best.energy}, out)
    os.replace(os.path.join(folder, "partial.json"), os.path.join(folder, "result.json"))
except Exception as error:
    open(os.path.join(folder, "error.txt"), "w").write(repr(error))
"""


class MyJobManager(AsyncJobManager):
    def submit(self, job: dict) -> dict:
        folder = self.context.job_dir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "qubo.json").write_text(json.dumps(job))
        process = subprocess.Popen(
            [sys.executable, "-c", SERVICE, str(folder)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return {"id": str(process.pid)}

    def _handle_submit_info(self, value: dict) -> None:
        self.set_info(id=value["id"], host=os.uname().nodename)

    def get_status(self) -> AsyncStatus:
        folder = self.context.job_dir
        if (folder / "result.json").exists():
            return AsyncStatus.DONE
        if (folder / "error.txt").exists():
            self.status_reason = (folder / "error.txt").read_text()
            return AsyncStatus.FAILED
        return AsyncStatus.RUNNING

    def get_result(self) -> dict:
        return json.loads((self.context.job_dir / "result.json").read_text())


class AsyncAnnealer(AsyncCore, Annealer):
    JobManager = MyJobManager

    def __init__(self, name: str = None):
        AsyncCore.__init__(self, interruptable="POST", name=name)
        Annealer.__init__(self)

    def submit_postprocess(self, input_data, config, **kwargs):
        qubo = [[i, j, weight] for (i, j), weight in self.preprocessed_input["Q"].items()]
        return self.job_manager.submit({"Q": qubo, "num_reads": config["number_of_reads"]})

    def collect_postprocess(self, server_result):
        self.metrics.add_metric("energy", server_result["energy"])
        return {int(variable): value for variable, value in server_result["sample"].items()}
