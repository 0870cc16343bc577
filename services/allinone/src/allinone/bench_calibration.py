"""How fast this machine is, so benchmark files from different machines can be compared.

The goals are absolute seconds "on this 2-core machine", but the machine a run lands on varies: the
same commit has measured 1.8× apart on two sessions' machines. Each run therefore records two fixed
reference workloads (best of five, so a descheduled moment does not count) and the share of CPU
time the hypervisor took ("steal") while the benchmarks ran. Divide two files' reference figures to
see how much of a difference in the results is the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from allinone.bench_load import machine_ticks

_LOOP_ITERATIONS = 2_000_000
_GEMM_N = 600  # 2·600³ flops, single BLAS call


@dataclass(frozen=True)
class Calibration:
    python_mops: float  # million iterations/s of a plain interpreted loop (one core)
    matmul_gflops: float  # float64 matrix product, numpy's BLAS with its default threads


def _best(fn: Callable[[], object], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _python_loop() -> int:
    total = 0
    for i in range(_LOOP_ITERATIONS):
        total += i * i
    return total


def measure() -> Calibration:
    """The two reference workloads, best of five each (about one second in all)."""
    a = np.random.default_rng(0).standard_normal((_GEMM_N, _GEMM_N))
    a @ a  # warm the BLAS threads
    loop_s = _best(_python_loop)
    gemm_s = _best(lambda: a @ a)
    return Calibration(_LOOP_ITERATIONS / loop_s / 1e6, 2.0 * _GEMM_N**3 / gemm_s / 1e9)


def steal_ticks() -> tuple[int, int]:
    """(steal, total) clock ticks of the whole machine since boot ((0, 0) if /proc/stat is unreadable)."""
    ticks = machine_ticks()
    return (ticks[7], sum(ticks)) if len(ticks) == 8 else (0, 0)


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of the machine's CPU time taken by the hypervisor between two readings, in per cent."""
    total = after[1] - before[1]
    return None if total <= 0 else 100.0 * (after[0] - before[0]) / total
