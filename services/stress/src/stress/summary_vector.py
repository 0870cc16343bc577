"""`scenarios_present.summary_block` for every portfolio of a batch at once (the stress step's hot path).

The per-portfolio block ran `summarise` once per portfolio and once per category (a dozen small
numpy calls each) and `money()` (Decimal) per amount: ~1,000 × 6 summaries per cycle. Here each
statistic is one numpy operation over the (portfolio × scenario) matrix, with the same arithmetic
per portfolio: a row of a C-contiguous matrix reduced along its last axis is summed by the same
pairwise loop over the same values in the same order as the 1-D vector of the per-portfolio path,
sorted the same way, and the amounts are formatted by `money_strings` (the very `money()` strings).

Only portfolios whose scenario P&L (and correlation effects, when there are any) are all finite
take this path; the others return None and keep the per-portfolio block, so every skipped-value
rule stays in one place (`summarise`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stress.money_vector import money_strings


def _median(ordered: np.ndarray) -> np.ndarray:
    """`compute.scenarios._median` of every row of an ascending (P, n) matrix."""
    half = ordered.shape[1] // 2
    if ordered.shape[1] % 2:
        return ordered[:, half]
    return (ordered[:, half - 1] + ordered[:, half]) / 2


def summary_blocks(
    values: np.ndarray,
    effects: np.ndarray | None,
    *,
    keys: list[str],
    categories: list[str],
    basis: str,
) -> list[dict[str, Any] | None]:
    """`summary_block` of every column p of `values` (s, P) — effects (s, P) or None when there is no
    correlated part — or None where the per-portfolio block must be used."""
    n_s, n_p = values.shape
    if n_s == 0:
        return [None] * n_p
    v = np.ascontiguousarray(values.T, dtype=np.float64)  # (P, s): one C-contiguous row per portfolio
    ok = np.all(np.isfinite(v), axis=1).astype(bool)
    e = None if effects is None else np.ascontiguousarray(effects.T, dtype=np.float64)
    if e is not None:
        ok &= np.isfinite(e).all(axis=1)
    rows = np.arange(n_p)
    worst, best = np.argmin(v, axis=1), np.argmax(v, axis=1)  # first of equal values, as summarise
    amounts = [v[rows, worst], v[rows, best], v.mean(axis=1), _median(np.sort(v, axis=1))]
    amounts.append(e.mean(axis=1) if e is not None else np.full(n_p, np.nan))  # NaN: no effect (None)
    negative, positive = (v < 0).sum(axis=1).tolist(), (v > 0).sum(axis=1).tolist()
    names = list(dict.fromkeys(categories))
    counts = []
    for category in names:
        cols = np.flatnonzero(np.array([c == category for c in categories]))
        sub = np.ascontiguousarray(v[:, cols])
        counts.append(len(cols))
        amounts += [sub[rows, np.argmin(sub, axis=1)], sub.mean(axis=1)]
    # Every amount formatted in one pass: one (amount, portfolio) row of texts per statistic.
    flat = money_strings(np.stack(amounts))
    worst_s, best_s, mean_s, median_s, effect_s, *by_category = (
        flat[i * n_p : (i + 1) * n_p] for i in range(len(amounts))
    )
    per_category = [
        (category, count, by_category[2 * j], by_category[2 * j + 1])
        for j, (category, count) in enumerate(zip(names, counts, strict=True))
    ]
    worst_l, best_l = worst.tolist(), best.tolist()
    out: list[dict[str, Any] | None] = []
    for p, good in enumerate(ok.tolist()):
        if not good:
            out.append(None)
            continue
        out.append(
            {
                "basis": basis,
                "worst_case_pnl": worst_s[p],
                "worst_scenario": keys[worst_l[p]],
                "best_case_pnl": best_s[p],
                "best_scenario": keys[best_l[p]],
                "mean_pnl": mean_s[p],
                "median_pnl": median_s[p],
                "scenarios_negative": negative[p],
                "scenarios_positive": positive[p],
                "mean_correlation_effect": effect_s[p],
                "category_breakdown": {
                    c: {"count": count, "worst_pnl": w[p], "mean_pnl": m[p]} for c, count, w, m in per_category
                },
            }
        )
    return out
