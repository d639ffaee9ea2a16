"""Reading a config: the YAML 1.2 loader (``config_yaml.read_yaml``) against PyYAML's own libyaml loader.

Two texts: a large config of 10,000 parameter values (about 60 KB, already more than any
benchmark needs) and one near the 1 MB limit. Baseline: ``yaml.load(text, CSafeLoader)``, the
YAML 1.1 reading quark-cli used before (without its duplicate-key check). Target: the large
config read in under 0.1 s, so ``validate`` and ``submit`` stay interactive.
"""

from __future__ import annotations

import time

import yaml
from common import median_of, save, table

from quark_cli.config_yaml import MAX_CONFIG_BYTES, read_yaml


def config_text(values: int) -> str:
    """A GHZ -> GHZCircuit -> Sampler config whose device level lists ``values`` seeds."""
    seeds = ", ".join(str(i) for i in range(values))
    return (
        "defaults: &sampling {shots: [1000]}\n"
        "application:\n  name: GHZ\n  config: {n_qubits: [2, 3]}\n  submodules:\n"
        "    - name: GHZCircuit\n      submodules:\n"
        f"        - name: Sampler\n          config:\n            <<: *sampling\n            seed: [{seeds}]\n"
    )


def timed(function, text: str) -> float:
    start = time.perf_counter()
    function(text)
    return time.perf_counter() - start


def main() -> dict:
    large = config_text(10_000)
    limit = config_text(1)
    count = 1
    while len(limit) < MAX_CONFIG_BYTES * 0.95:
        count *= 2
        limit = config_text(count)
        if len(limit) > MAX_CONFIG_BYTES:
            count //= 2
            limit = config_text(count)
            break
    figures = {}
    for name, text in (("large", large), ("near_limit", limit)):
        ours = median_of(5, lambda text=text: timed(read_yaml, text))
        baseline = median_of(5, lambda text=text: timed(lambda t: yaml.load(t, Loader=yaml.CSafeLoader), text))
        figures[name] = {"bytes": len(text), "read_yaml_s": round(ours, 4), "pyyaml_csafe_s": round(baseline, 4)}
    table(
        [
            ("what", "quark-cli", "baseline (PyYAML CSafeLoader)", "target"),
            *(
                (
                    f"read a {entry['bytes'] // 1000} KB config (median of 5)",
                    f"{entry['read_yaml_s']:.3f} s",
                    f"{entry['pyyaml_csafe_s']:.3f} s",
                    "< 0.1 s" if name == "large" else "-",
                )
                for name, entry in figures.items()
            ),
        ]
    )
    save("config", figures)
    return figures


if __name__ == "__main__":
    main()
