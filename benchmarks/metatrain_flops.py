"""Arithmetic per meta-iteration, and the time floor it sets on this machine.

Counts the floating-point operations of matrix products (torch.utils.flop_counter) in one
meta-iteration, split into the phases the workers run (pool embedding, phase 1: inner adaptation
and query forward, phase 2: the meta-gradient backward), and measures this machine's matrix-product
throughput on one thread at a shape the relation net uses. Their ratio is the shortest possible
seconds per meta-iteration if every core did nothing but matrix products at that rate: the speed
the same function can reach here without changing the arithmetic.

    python benchmarks/metatrain_flops.py
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import torch
from torch.utils.flop_counter import FlopCounterMode

from actors.episode_worker import EpisodeWorker
from gsrl.config import load_config
from gsrl.jobs.assembly import make_scheduler_env
from record import provenance, write

PHASES = {"embed": "pool", "forward": "phase1_adapt_and_query", "backward": "phase2_meta_gradient"}
GEMM_SHAPE = (3376, 300, 200)  # [16 query graphs x 211 pair rows, d] @ [d, 2 * edge_hidden_dim]


def count_phase_flops(config, pairs: list[int]) -> dict[str, float]:
    """GFLOP of each worker phase in one meta-iteration (after a warm-up iteration)."""
    counted: Counter[str] = Counter()

    def counting(method):
        def wrapper(self, *args, **kwargs):
            with FlopCounterMode(display=False) as counter:
                result = method(self, *args, **kwargs)
            counted[PHASES[method.__name__]] += counter.get_total_flops() / 1e9
            return result
        return wrapper

    originals = {name: getattr(EpisodeWorker, name) for name in PHASES}
    for name, method in originals.items():
        setattr(EpisodeWorker, name, counting(method))
    try:
        env = make_scheduler_env(config)
        env.reset(seed=config.run.seed)
        env.step(pairs)
        counted.clear()
        env.step(pairs)
        env.close()
    finally:
        for name, method in originals.items():
            setattr(EpisodeWorker, name, method)
    return dict(counted)


def gemm_gflops_one_thread(repeats: int = 200) -> float:
    rows, inner, cols = GEMM_SHAPE
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(10):
            a @ b
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    return 2 * rows * inner * cols * repeats / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default="configs/gsmeta/sider-10shot.yaml")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--cores", type=int, default=None, help="cores to divide the work over (default: all)")
    parser.add_argument("--name", default="metatrain_flops-sider-10shot-cpu2")
    args = parser.parse_args()

    config = load_config(args.config, args.override)
    pairs = list(range(0, 2 * config.scheduler.pairs, 2))
    phases = count_phase_flops(config, pairs)
    total = sum(phases.values())
    gemm = gemm_gflops_one_thread()
    cores = args.cores or torch.get_num_threads()
    record = {
        "benchmark": "metatrain_flops", **provenance(), "config": args.config, "overrides": args.override,
        "pool_pairs_selected": pairs,
        "gflop_per_iteration": total, "gflop_by_phase": phases,
        "gemm_shape": list(GEMM_SHAPE), "gemm_gflops_per_thread": gemm, "cores": cores,
        "floor_seconds_per_iteration": total / (gemm * cores),
    }
    out = write(record, args.name)
    print(json.dumps({k: record[k] for k in ("gflop_per_iteration", "gflop_by_phase", "gemm_gflops_per_thread",
                                             "floor_seconds_per_iteration")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
