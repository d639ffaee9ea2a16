"""MaxCut on seeded random graphs: a benchmark whose answers can be checked by brute force.

Stack: ``MaxCut`` (application) -> a solver (``QAOA``) -> a device. Data between the levels:

* down: ``MaxCut`` -> ``{"n_nodes": n, "edges": [(i, j), ...]}`` (i < j, sorted) -> solver;
* up: solver -> ``{"best_bitstring", "counts", "shots", ...}`` -> ``MaxCut``, which scores it against
  the exact optimum.

A bitstring assigns node k to side ``bitstring[k]``, matching the devices' "qubit 0 first" order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from quark_cli.core import Core, timed
from quark_cli.modules import build_submodule, positive_int, settings
from quark_cli.modules.devices import warm_numpy

#: Largest graph whose optimum ``MaxCut`` computes by brute force (2**16 assignments).
BRUTE_FORCE_MAX_NODES = 16
#: Largest graph ``MaxCut`` accepts: one qubit per node, and the circuits are simulated exactly
#: (2**20 amplitudes: QAOA optimises 20 nodes in about 20 s and 0.5 GB on a laptop core).
MAX_NODES = 20


def random_graph(n_nodes: int, edge_probability: float, seed: int) -> list[tuple[int, int]]:
    """The edges of a seeded G(n, p) graph, as sorted pairs (i, j) with i < j.

    One ``numpy.random.default_rng(seed).random()`` draw per pair, pairs in lexicographic order;
    the pair is an edge when its draw is below ``edge_probability``. Rule for an empty draw: the
    edge (0, 1) is added, so every graph has at least one edge and a positive optimum.
    """
    import numpy as np

    n_nodes = positive_int(n_nodes, "nodes")
    if n_nodes < 2:
        raise ValueError("a MaxCut graph needs at least 2 nodes")
    pairs = [(i, j) for i in range(n_nodes) for j in range(i + 1, n_nodes)]
    draws = np.random.default_rng(seed).random(len(pairs))
    edges = [pair for pair, draw in zip(pairs, draws, strict=True) if draw < edge_probability]
    return edges or [(0, 1)]


def cut_value(edges: Iterable[Sequence[int]], bitstring: str) -> int:
    """Number of edges whose two nodes lie on different sides of ``bitstring``."""
    return sum(1 for i, j in edges if bitstring[i] != bitstring[j])


def all_cut_values(n_nodes: int, edges: Iterable[Sequence[int]]) -> Any:
    """Cut value of every assignment as a numpy array indexed by the assignment read as an integer.

    Node 0 is the most significant bit, so index ``int(bitstring, 2)`` holds ``cut_value(edges,
    bitstring)``; this matches myQLM's ``state.int``.
    """
    import numpy as np

    states = np.arange(2**n_nodes, dtype=np.int64)
    bits = (states[:, None] >> (n_nodes - 1 - np.arange(n_nodes))) & 1
    values = np.zeros(len(states), dtype=np.int64)
    for i, j in edges:
        values += bits[:, i] != bits[:, j]
    return values


def brute_force_maxcut(n_nodes: int, edges: Iterable[Sequence[int]]) -> int:
    """The maximum cut value of the graph, by trying all 2**n assignments (n <= 16)."""
    if n_nodes > BRUTE_FORCE_MAX_NODES:
        raise ValueError(f"brute force is limited to {BRUTE_FORCE_MAX_NODES} nodes, not {n_nodes}")
    return int(all_cut_values(n_nodes, list(edges)).max())


class MaxCut(Core):
    """Application: split the nodes of a random graph in two so that as many edges as possible cross."""

    uses_store_dir = False  # writes no files

    submodule_options = ["QAOA"]

    def get_parameter_options(self) -> dict[str, dict[str, Any]]:
        return {
            "nodes": {
                "values": [4, 5, 6, 8, 10, 12],
                "default": 6,
                "custom_input": True,
                "min": 2,
                "max": MAX_NODES,
                "note_above": [
                    BRUTE_FORCE_MAX_NODES,
                    "the exact optimum is not computed (brute force stops at "
                    f"{BRUTE_FORCE_MAX_NODES} nodes): no approximation ratio is reported",
                ],
                "description": "Number of nodes of the graph (one qubit each)",
            },
            "edge_probability": {
                "values": [0.3, 0.5, 0.7],
                "default": 0.5,
                "custom_input": True,
                "min": 0.0,
                "max": 1.0,
                "description": "Probability of each possible edge (G(n, p) graph)",
            },
            "graph_seed": {
                "values": [1, 2, 3],
                "default": 1,
                "custom_input": True,
                "min": 0,
                "description": "Seed of the random graph; equal seeds give equal graphs",
            },
        }

    def get_default_submodule(self, option: str) -> Core:
        return build_submodule(self, option)

    def graph(self, config: dict[str, Any]) -> dict[str, Any]:
        """The problem instance of a config; rebuilt from the config alone, so it needs no state."""
        config = settings(self, config)
        edges = random_graph(config["nodes"], config["edge_probability"], config["graph_seed"])
        return {"n_nodes": config["nodes"], "edges": edges}

    def preprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        warm_numpy()
        return timed(self.graph, config)

    def postprocess(self, input_data: Any, config: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
        warm_numpy()
        return timed(self._score, input_data, config)

    def _score(self, solution: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        graph = self.graph(config)
        n_nodes, edges = graph["n_nodes"], graph["edges"]
        counts: dict[str, int] = solution["counts"]
        best = solution.get("best_bitstring") or best_bitstring(counts, edges)
        best_cut = cut_value(edges, best)
        optimum = brute_force_maxcut(n_nodes, edges) if n_nodes <= BRUTE_FORCE_MAX_NODES else None
        shots = sum(counts.values())
        mean_cut = sum(cut_value(edges, bits) * n for bits, n in counts.items()) / shots
        metrics = {
            "best_bitstring": best,
            "best_cut": best_cut,
            "optimal_cut": optimum,
            "approximation_ratio": best_cut / optimum if optimum else None,
            "expected_cut_ratio": mean_cut / optimum if optimum else None,
            "n_edges": len(edges),
        }
        self.metrics.add_metric_batch(metrics)
        return metrics


def best_bitstring(counts: dict[str, int], edges: Iterable[Sequence[int]]) -> str:
    """The sampled bitstring with the largest cut; ties go to the most frequent, then the smallest string."""
    edges = list(edges)
    return min(counts, key=lambda bits: (-cut_value(edges, bits), -counts[bits], bits))
