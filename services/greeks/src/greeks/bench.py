"""Throughput of the closed-form kernel: `python -m greeks.bench [n] [repeats]`."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import numpy as np

from greeks.compute import bsm_greeks, default_workers


def measure_throughput(n: int = 2_000_000, repeats: int = 5, *, workers: int | None = None, seed: int = 7) -> dict:
    """Median options/s for price + delta, gamma, theta, vega, rho on n random valid contracts."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(20.0, 500.0, n)
    K = S * rng.uniform(0.6, 1.4, n)
    T = rng.integers(1, 730, n) / 365.0
    r = rng.uniform(0.0, 0.06, n)
    q = rng.uniform(0.0, 0.04, n)
    sigma = rng.uniform(0.05, 1.0, n)
    is_call = rng.random(n) < 0.5
    threads = workers if workers is not None else default_workers()
    bsm_greeks(S[:10_000], K[:10_000], T[:10_000], r[:10_000], q[:10_000], sigma[:10_000], is_call[:10_000])
    timings: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = bsm_greeks(S, K, T, r, q, sigma, is_call, workers=threads)
        timings.append(time.perf_counter() - start)
    finite = bool(all(np.isfinite(a).all() for a in out))
    median = statistics.median(timings)
    result: dict[str, Any] = {
        "n": n,
        "repeats": repeats,
        "workers": threads,
        "median_seconds": median,
        "best_seconds": min(timings),
        "options_per_second": n / median,
        "all_finite": finite,
    }
    return result


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    report = measure_throughput(*args)
    sys.stdout.write(f"{report}\n")
