"""Aggregate statistics across seeds, as in rliable (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"): IQM / mean / median with stratified bootstrap 95% confidence intervals, and the
probability of improvement with its CI.

Scores are race-time ratios to the reference lap (lower = better), one array of per-seed values per task
(map). The stratified bootstrap resamples seeds with replacement *within each task* independently; that is
``scipy.stats.bootstrap`` with one sample per task and ``paired=False`` (the resampling is SciPy's, not ours).
Percentile intervals, as rliable's default. SciPy rather than rliable: rliable 1.2 installs, but pulls arch,
statsmodels, pandas and seaborn for what SciPy gives directly (``trim_mean`` is what rliable's IQM calls).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000  # rliable's examples use 2000 for intervals
DEFAULT_SEED = 0  # intervals are reproducible: the same scores give the same CI

Scores = Sequence[np.ndarray] | np.ndarray  # per task: per-seed values (an (n_seeds,) or (n_seeds, n_tasks) array)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap CI; ``ci`` is None when fewer than 2 seeds (no spread to resample)."""

    value: float
    ci: tuple[float, float] | None

    def to_json(self) -> dict:
        return {"value": self.value, "ci": list(self.ci) if self.ci is not None else None}


def _as_tasks(scores: Scores) -> list[np.ndarray]:
    """(n_seeds,) -> one task; (n_seeds, n_tasks) -> columns; a list -> one array per task (sizes may differ)."""
    if isinstance(scores, np.ndarray):
        if scores.ndim == 1:
            return [scores.astype(float)]
        if scores.ndim == 2:
            return [scores[:, k].astype(float) for k in range(scores.shape[1])]
        raise ValueError(f"scores must be 1-D or 2-D (seeds x tasks), got shape {scores.shape}")
    return [np.asarray(task, dtype=float) for task in scores]


def iqm(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed each side), as rliable's ``aggregate_iqm``."""
    return stats.trim_mean(values, proportiontocut=0.25, axis=axis)


def _pooled(statistic: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A statistic of the pooled runs x tasks scores, vectorised over SciPy's resample axis (the last one)."""

    def pooled(*tasks: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(np.concatenate([np.moveaxis(t, axis, -1) for t in tasks], axis=-1), axis=-1)

    return pooled


AGGREGATES: dict[str, Callable[..., np.ndarray]] = {
    "iqm": _pooled(iqm),
    "mean": _pooled(np.mean),
    "median": _pooled(np.median),
}


def _bootstrap_ci(samples: list[np.ndarray], statistic: Callable[..., np.ndarray], n_resamples: int,
                  seed: int) -> tuple[float, float] | None:  # fmt: skip
    if min(len(s) for s in samples) < 2:
        return None
    result = stats.bootstrap(
        samples, statistic, n_resamples=n_resamples, confidence_level=CONFIDENCE_LEVEL, method="percentile",
        paired=False, vectorized=True, rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def aggregate(scores: Scores, name: str, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Estimate:
    """``name`` in AGGREGATES, over every finite score; the CI by stratified bootstrap over seeds."""
    statistic = AGGREGATES[name]
    tasks = [t[np.isfinite(t)] for t in _as_tasks(scores)]
    tasks = [t for t in tasks if len(t)]
    if not tasks:
        return Estimate(float("nan"), None)
    return Estimate(float(statistic(*tasks)), _bootstrap_ci(tasks, statistic, n_resamples, seed))


def aggregates(scores: Scores, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Estimate]:
    return {name: aggregate(scores, name, n_resamples, seed) for name in AGGREGATES}


def probability_lower(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X < Y) + 0.5 P(X = Y) over all pairs (the Mann-Whitney U statistic / (n m)); rliable's per-task
    probability of improvement with the order flipped, because a lower race time is better. inf (never
    finished) compares as the worst value, two infs as a tie."""
    x = np.moveaxis(x, axis, -1)[..., :, None]
    y = np.moveaxis(y, axis, -1)[..., None, :]
    return (x < y).mean(axis=(-2, -1)) + 0.5 * (x == y).mean(axis=(-2, -1))


def _average_over_tasks(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """samples = (x_task0, y_task0, x_task1, y_task1, ...): rliable averages the per-task probability."""
    pairs = [probability_lower(samples[i], samples[i + 1], axis) for i in range(0, len(samples), 2)]
    return np.mean(pairs, axis=0)


def probability_of_improvement(scores_a: Scores, scores_b: Scores, n_resamples: int = DEFAULT_RESAMPLES,
                               seed: int = DEFAULT_SEED) -> Estimate:  # fmt: skip
    """P(a run of A is better (faster) than a run of B), averaged over tasks; CI by resampling A's and B's seeds
    independently within each task (stratified bootstrap)."""
    tasks_a, tasks_b = _as_tasks(scores_a), _as_tasks(scores_b)
    if len(tasks_a) != len(tasks_b):
        raise ValueError(f"A has {len(tasks_a)} task(s), B has {len(tasks_b)}")
    samples = [s for pair in zip(tasks_a, tasks_b, strict=True) for s in pair]
    if not samples or min(len(s) for s in samples) == 0:
        return Estimate(float("nan"), None)
    value = float(_average_over_tasks(*samples))
    return Estimate(value, _bootstrap_ci(samples, _average_over_tasks, n_resamples, seed))


def difference_detected(estimate: Estimate) -> bool:
    """A difference is claimed only when the 95% CI of P(A better than B) excludes 0.5."""
    return estimate.ci is not None and (estimate.ci[0] > 0.5 or estimate.ci[1] < 0.5)


def conclusion(name_a: str, name_b: str, estimate: Estimate, where: str, n_seeds: int) -> str:
    """One sentence that claims no more than the CI shows, e.g.
    'a01 is faster than a01_btr at 1 h: P = 0.84 [0.61, 0.97]'."""
    if np.isnan(estimate.value):
        return f"{name_a} vs {name_b} at {where}: nothing to compare yet"
    if estimate.ci is None:
        return f"{name_a} vs {name_b} at {where}: one run per group, no interval; no difference can be claimed"
    interval = f"P({name_a} faster) = {estimate.value:.2f} [{estimate.ci[0]:.2f}, {estimate.ci[1]:.2f}]"
    if estimate.ci[0] > 0.5:
        return f"{name_a} is faster than {name_b} at {where}: {interval}"
    if estimate.ci[1] < 0.5:
        return f"{name_b} is faster than {name_a} at {where}: {interval}"
    return f"{name_a} vs {name_b} at {where}: no difference detectable with {n_seeds} seeds ({interval})"


def _fraction_at_most(tau: float) -> Callable[..., np.ndarray]:
    """The pooled share of runs x tasks scores <= tau (a never-finished seed, inf, never counts)."""
    return _pooled(lambda values, axis: (values <= tau).mean(axis=axis))


def performance_profile(scores: Scores, taus: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES,
                        seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """rliable's score distribution with the order flipped (lower is better): F(tau) = share of runs with ratio
    <= tau, pooled over tasks; per tau a stratified bootstrap 95% CI (NaN bounds with fewer than 2 seeds)."""
    tasks = [t for t in _as_tasks(scores) if len(t)]
    values, low, high = np.full(len(taus), np.nan), np.full(len(taus), np.nan), np.full(len(taus), np.nan)
    if not tasks:
        return values, low, high
    for i, tau in enumerate(taus):
        statistic = _fraction_at_most(float(tau))
        values[i] = float(statistic(*tasks))
        ci = _bootstrap_ci(tasks, statistic, n_resamples, seed)
        if ci is not None:
            low[i], high[i] = ci
    return values, low, high
