"""Stress testing, position by position (calculations.md §6.3 direct impact, §6.4 correlated impact).

Pure and vectorised over positions × scenarios, for one or many portfolios at once: every
underlying's scenario return is computed once, each position's P&L follows from its own exposure
(stocks) or a full Black-Scholes revaluation (options), and portfolio totals are sums over their
positions. Both methods reduce to "move the factors by a vector g, then shock each underlying by
its betas · g":

* direct:     g = ΔF on the shocked factors, 0 elsewhere                R^D_u = max(β_u · ΔF_s, −1)
* correlated: g_k = Σ_kk · w_k with w = Σ_ss⁻¹ ΔF_s (k shocked)           R^C_u = max(c_u · w, −1),
              c_{u,k} = β_{u,k} · Σ_kk, so c_u · w = β_u · g

so the per-factor linear contributions are X_k · g_k in both cases (D_k, C_k) and sum to the linear
part. There is no portfolio loss cap anywhere: the −100 % floor per underlying and option
revaluation are the only bounds (§6.5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stress.compute.revaluation import OptionLegs, revaluation_pnl

# The eight model factors of calculations.md §4.1 / §6.4, in the covariance order of §7.1.
MODEL_FACTORS: tuple[str, ...] = (
    "market",
    "momentum",
    "value",
    "growth",
    "quality",
    "size",
    "low_volatility",
    "interest_rate",
)
MARKET = "market"
RATE = "interest_rate"
RETURN_FLOOR = -1.0
# §6.4 numerics: pseudo-inverse of Σ_ss (rcond 1e-10) when cond(Σ_ss) > 1e8.
ILL_CONDITIONED_ABOVE = 1e8
PINV_RCOND = 1e-10


@dataclass(frozen=True)
class ScenarioSet:
    """n scenarios over the factor columns `factors`: shock values, which factors are shocked, IV shift."""

    keys: tuple[str, ...]
    factors: tuple[str, ...]
    shocks: np.ndarray  # (n, k): ΔF, 0 where not shocked
    shocked: np.ndarray  # (n, k) bool
    iv_shift: np.ndarray  # (n,) vol points as fractions
    enabled: np.ndarray | None = None  # (n,) bool; False = never computed (failed validation at load)

    @classmethod
    def build(
        cls,
        keys: Sequence[str],
        shocks: Sequence[Mapping[str, float]],
        factors: Sequence[str] = MODEL_FACTORS,
        iv_shift: Sequence[float] | None = None,
        enabled: Sequence[bool] | None = None,
    ) -> ScenarioSet:
        """From `{factor_code: shock}` mappings; a code outside `factors` is a ValueError (validate first)."""
        columns = {code: j for j, code in enumerate(factors)}
        values = np.zeros((len(keys), len(factors)))
        mask = np.zeros((len(keys), len(factors)), dtype=bool)
        for i, mapping in enumerate(shocks):
            for code, shock in mapping.items():
                if code not in columns:
                    raise ValueError(f"scenario {keys[i]!r}: factor {code!r} is not a model factor")
                values[i, columns[code]] = float(shock)
                mask[i, columns[code]] = True
        shift = np.zeros(len(keys)) if iv_shift is None else np.asarray(iv_shift, dtype=np.float64)
        on = None if enabled is None else np.asarray(enabled, dtype=bool)
        return cls(tuple(keys), tuple(factors), values, mask, shift, on)

    def __len__(self) -> int:
        return len(self.keys)

    def scaled(self, factor: float) -> ScenarioSet:
        """The same scenarios with every shock multiplied by `factor` (same factors shocked)."""
        return ScenarioSet(self.keys, self.factors, self.shocks * factor, self.shocked, self.iv_shift, self.enabled)


@dataclass(frozen=True)
class Book:
    """Positions of P portfolios (rows grouped by portfolio, portfolio_index ascending).

    `exposure` is each position's signed delta-adjusted dollar exposure E (USD); `betas` holds one row
    per underlying (finite; default rows are market 1, others 0). `option_positions` are the rows
    revalued in full with `legs`; every other row (stocks, options without revaluation inputs) moves
    linearly, E · R.
    """

    factors: tuple[str, ...]
    portfolio_index: np.ndarray  # (n,) int
    n_portfolios: int
    underlying_index: np.ndarray  # (n,) int into betas
    exposure: np.ndarray  # (n,)
    betas: np.ndarray  # (n_underlyings, k)
    option_positions: np.ndarray  # (m,) int
    legs: OptionLegs  # (m)
    equity: np.ndarray  # (P,) NaN when unknown

    @property
    def n_positions(self) -> int:
        return int(self.exposure.shape[0])

    def position_factor_exposures(self) -> np.ndarray:
        """X_{i,f} = E_i · β_{u(i),f}, shape (n, k)."""
        result: np.ndarray = self.exposure[:, None] * self.betas[self.underlying_index]
        return result

    def factor_exposures(self) -> np.ndarray:
        """X_f = Σ_i X_{i,f} per portfolio, shape (P, k)."""
        return group_sum(self.position_factor_exposures().T, self.portfolio_index, self.n_portfolios).T

    def gross_exposure(self) -> np.ndarray:
        """G = Σ_i |E_i| per portfolio."""
        return group_sum(np.abs(self.exposure)[None, :], self.portfolio_index, self.n_portfolios)[0]


def group_sum(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Row-wise sums of `values` (r, n) by `group` (n,) → (r, n_groups); one bincount per row."""
    values = np.atleast_2d(values)
    if values.shape[1] == 0:
        return np.zeros((values.shape[0], n_groups))
    return np.stack([np.bincount(group, weights=row, minlength=n_groups) for row in values])


@dataclass(frozen=True)
class Impacts:
    """P&L of every scenario for every position and portfolio of a book (NaN where not computed)."""

    computed: np.ndarray  # (s,) bool: every shocked factor available
    moves: np.ndarray  # (s, k) factor moves g applied to the betas
    raw_return: np.ndarray  # (s, n_underlyings) β_u · g before the floor
    underlying_return: np.ndarray  # (s, n_underlyings) floored at −100 %
    position_pnl: np.ndarray  # (s, n)
    position_linear: np.ndarray  # (s, n) E_i · β_u · g (no floor, no convexity)
    total: np.ndarray  # (s, P)
    linear: np.ndarray  # (s, P) Σ_k X_k · g_k
    factor_pnl: np.ndarray  # (s, P, k) X_k · g_k (0 for factors that do not move)
    floored: np.ndarray  # (s, P) underlyings held whose predicted return hit the floor

    @property
    def nonlinear(self) -> np.ndarray:
        """Total − linear: option convexity and −100 % floors."""
        result: np.ndarray = self.total - self.linear
        return result


def apply_moves(book: Book, moves: np.ndarray, iv_shift: np.ndarray, computed: np.ndarray) -> Impacts:
    """Position and portfolio P&L when the factors move by `moves` (s, k) (rows not `computed` → NaN)."""
    moves = np.where(computed[:, None], moves, 0.0)
    raw = moves @ book.betas.T  # (s, n_underlyings)
    floored_return = np.maximum(raw, RETURN_FLOOR)
    pos_return = floored_return[:, book.underlying_index]
    position_pnl = book.exposure * pos_return
    if book.option_positions.size:
        option_returns = pos_return[:, book.option_positions]
        position_pnl[:, book.option_positions] = revaluation_pnl(book.legs, option_returns, iv_shift)
    position_linear = book.exposure * raw[:, book.underlying_index]
    total = group_sum(position_pnl, book.portfolio_index, book.n_portfolios)
    exposures = book.factor_exposures()  # (P, k)
    factor_pnl = exposures[None, :, :] * moves[:, None, :]
    linear = factor_pnl.sum(axis=2)
    # Distinct (portfolio, underlying) pairs: a floored underlying counts once per portfolio.
    n_und = book.betas.shape[0]
    pairs = np.unique(book.portfolio_index * n_und + book.underlying_index)
    pair_portfolio, pair_underlying = np.divmod(pairs, n_und) if n_und else (pairs, pairs)
    floored = group_sum((raw[:, pair_underlying] < RETURN_FLOOR).astype(np.float64), pair_portfolio, book.n_portfolios)
    missing = ~computed
    floored[missing] = 0.0
    for array in (raw, floored_return, position_pnl, position_linear, total, linear):
        array[missing] = np.nan
    factor_pnl[missing] = np.nan
    return Impacts(
        computed=computed,
        moves=moves,
        raw_return=raw,
        underlying_return=floored_return,
        position_pnl=position_pnl,
        position_linear=position_linear,
        total=total,
        linear=linear,
        factor_pnl=factor_pnl,
        floored=floored.astype(np.int64),
    )


def computable(scenarios: ScenarioSet, available: np.ndarray) -> np.ndarray:
    """A scenario is computed only when every factor it shocks has data (§6.4 `factor_unavailable`)."""
    result: np.ndarray = ~(scenarios.shocked & ~np.asarray(available, dtype=bool)[None, :]).any(axis=1)
    if scenarios.enabled is not None:
        result &= scenarios.enabled
    return result


def direct_impact(book: Book, scenarios: ScenarioSet, available: np.ndarray) -> Impacts:
    """§6.3: shocked factors move by their shocks, every other factor stays at 0."""
    return apply_moves(book, scenarios.shocks, scenarios.iv_shift, computable(scenarios, available))


@dataclass(frozen=True)
class ConditionalMoves:
    """§6.4 factor moves per scenario: w on the shocked block, g = Σ_kk·w, implied moves of the others."""

    computed: np.ndarray  # (s,) bool
    weights: np.ndarray  # (s, k): w_k on shocked factors, 0 elsewhere
    moves: np.ndarray  # (s, k): g_k = Σ_kk · w_k on shocked factors, 0 elsewhere
    implied: np.ndarray  # (s, k): Σ_os · w for unshocked available factors, NaN elsewhere
    ill_conditioned: np.ndarray  # (s,) bool
    condition_number: np.ndarray  # (s,) cond(Σ_ss)


def conditional_moves(scenarios: ScenarioSet, covariance: np.ndarray, available: np.ndarray) -> ConditionalMoves:
    """w = Σ_ss⁻¹·ΔF_s (numpy.linalg.solve; pseudo-inverse with rcond 1e-10 when cond > 1e8).

    Loops over scenarios (a handful), never over positions; `available` marks the factors with data.
    """
    available = np.asarray(available, dtype=bool)
    ok = computable(scenarios, available)
    s, k = scenarios.shocks.shape
    weights = np.zeros((s, k))
    implied = np.full((s, k), np.nan)
    ill = np.zeros(s, dtype=bool)
    cond = np.full(s, np.nan)
    for i in range(s):
        shocked = scenarios.shocked[i]
        if not ok[i] or not shocked.any():
            continue
        block = covariance[np.ix_(shocked, shocked)]
        delta = scenarios.shocks[i, shocked]
        cond[i] = np.linalg.cond(block)
        if not math.isfinite(cond[i]) or cond[i] > ILL_CONDITIONED_ABOVE:
            ill[i] = True
            w = np.linalg.pinv(block, rcond=PINV_RCOND) @ delta
        else:
            w = np.linalg.solve(block, delta)
        weights[i, shocked] = w
        others = ~shocked & available
        implied[i, others] = covariance[np.ix_(others, shocked)] @ w
    variances = np.where(available, np.diag(covariance), 0.0)
    moves = weights * variances[None, :]
    return ConditionalMoves(ok, weights, moves, implied, ill, cond)


@dataclass(frozen=True)
class CorrelatedImpacts:
    """Correlated impact (§6.4) with its conditional factor moves."""

    impacts: Impacts
    conditional: ConditionalMoves


def correlated_impact(
    book: Book, scenarios: ScenarioSet, covariance: np.ndarray, available: np.ndarray
) -> CorrelatedImpacts:
    """§6.4: each underlying moves by its expected return given the shocked factors, c_uᵀ·Σ_ss⁻¹·ΔF_s."""
    conditional = conditional_moves(scenarios, covariance, available)
    impacts = apply_moves(book, conditional.moves, scenarios.iv_shift, conditional.computed)
    return CorrelatedImpacts(impacts, conditional)


@dataclass(frozen=True)
class Summary:
    """Across scenarios of one portfolio (over the finite values only)."""

    worst: int | None  # index of the lowest P&L
    best: int | None
    mean: float | None
    median: float | None
    negative: int
    positive: int


def _median(values: np.ndarray) -> float:
    """`np.median` of a short 1-D finite vector, bit for bit (the middle value, or the two middle
    values' sum halved), without its generic partition/mean machinery (~10× the cost at 18 values)."""
    ordered = np.sort(values)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[half])
    return float((ordered[half - 1] + ordered[half]) / 2)


def summarise(pnl: np.ndarray) -> Summary:
    """Worst / best / mean / median and sign counts of a P&L vector (NaN = not computed, skipped)."""
    pnl = np.asarray(pnl, dtype=np.float64)
    finite = np.isfinite(pnl)
    if not finite.any():
        return Summary(None, None, None, None, 0, 0)
    values = np.where(finite, pnl, np.inf)
    worst = int(np.argmin(values))
    best = int(np.argmax(np.where(finite, pnl, -np.inf)))
    kept = pnl[finite]
    return Summary(
        worst=worst,
        best=best,
        mean=float(kept.mean()),
        median=_median(kept),
        negative=int((kept < 0).sum()),
        positive=int((kept > 0).sum()),
    )
