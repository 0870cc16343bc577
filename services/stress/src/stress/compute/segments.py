"""Per-portfolio reductions over the concatenated positions of a batch of portfolios.

A batch stores every portfolio's positions back to back in flat arrays; `counts[j]` is the number of
elements of portfolio j. The sums here equal, bit for bit, numpy's own sum of each portfolio's
segment: numpy adds a 1-D array pairwise (eight partial sums), so the same numbers added in another
grouping (a bincount, a reduceat, a zero-padded matrix) may differ in the last bit. Segments of one
length are therefore gathered into one C-ordered (segments × length) block and summed along its rows,
which numpy does with the same pairwise routine as for a single 1-D array.
"""

from __future__ import annotations

import numpy as np


def starts_of(counts: np.ndarray) -> np.ndarray:
    """Offset of each segment in the flat array."""
    return np.cumsum(counts) - counts


def owners(counts: np.ndarray) -> np.ndarray:
    """The segment index of every element of the flat array."""
    return np.repeat(np.arange(counts.size), counts)


def segment_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Σ of each segment, identical to `values[start:start + n].sum()` (0.0 for an empty segment)."""
    out = np.zeros(counts.size)
    starts = starts_of(counts)
    for n in np.unique(counts):
        if n == 0:
            continue
        which = np.flatnonzero(counts == n)
        out[which] = values[starts[which, None] + np.arange(n)].sum(axis=1)
    return out


def masked_nansums(values: np.ndarray, mask: np.ndarray, owner: np.ndarray, segments: int) -> np.ndarray:
    """`np.nansum(values[segment][mask[segment]])` of every segment: NaN counts as 0 in place, as
    nansum does, and the kept elements stay in order."""
    kept = np.where(np.isnan(values), 0.0, values)[mask]
    return segment_sums(kept, np.bincount(owner[mask], minlength=segments))


def segment_counts(mask: np.ndarray, owner: np.ndarray, segments: int) -> np.ndarray:
    """Number of True elements of each segment."""
    return np.bincount(owner[mask], minlength=segments)
