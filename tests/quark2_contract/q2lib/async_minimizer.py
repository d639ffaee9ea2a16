"""The seed's upgrade of an existing QUARK 2 solver, written exactly as the specification shows it.

The job goes to the test suite's controlled service (``toy_modules.ControlledJobManager``), which
solves the QUBO when the test lets the job finish.
"""

from __future__ import annotations

from toy_modules import ControlledJobManager

from q2lib.minimizer import Minimizer
from quark_cli import AsyncCore


class AsyncMinimizer(AsyncCore, Minimizer):
    JobManager = ControlledJobManager

    def __init__(self, name: str = None):
        AsyncCore.__init__(self, interruptable="POST", name=name)
        Minimizer.__init__(self)

    def submit_postprocess(self, input_data, config, **kwargs):
        qubo = [[i, j, weight] for (i, j), weight in self.preprocessed_input["Q"].items()]
        return self.job_manager.submit("minimize_qubo", qubo)

    def collect_postprocess(self, server_result):
        return {int(variable): value for variable, value in server_result.items()}
