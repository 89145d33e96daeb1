"""Sample-based distances between two point clouds, to score generative models; rank
statistics (ROC AUC, Spearman correlation) to score predictors."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def _quantiles(sorted_values: Float[Array, "p n"], num_levels: int) -> Float[Array, "p levels"]:
    """Empirical quantile functions (no interpolation) at the levels `(i + 1/2) / num_levels`."""
    num_values = sorted_values.shape[-1]
    # floor((i + 1/2) / num_levels * num_values), in exact integer arithmetic.
    indices = (2 * np.arange(num_levels) + 1) * num_values // (2 * num_levels)
    return sorted_values[:, indices]


def sliced_wasserstein(
    x: Float[Array, "n d"],
    y: Float[Array, "m d"],
    key: PRNGKeyArray,
    *,
    num_projections: int = 500,
) -> Float[Array, ""]:
    """Sliced 2-Wasserstein distance `sqrt(E_u[W_2(u.x, u.y)^2])` over random unit vectors u.

    Each 1D distance compares the empirical quantile functions of the projected samples at
    `max(n, m)` evenly spaced levels: exactly the W2 distance of the empirical measures when
    `n == m` (sorted samples matched one to one) or when one size divides the other, and
    within `O(1 / max(n, m))` of it otherwise. The estimate is random through `key`.
    """
    directions = jax.random.normal(key, (num_projections, x.shape[1]), dtype=x.dtype)
    directions = directions / jnp.linalg.norm(directions, axis=-1, keepdims=True)
    x_projected = jnp.sort(directions @ x.T, axis=-1)  # (p, n)
    y_projected = jnp.sort(directions @ y.T, axis=-1)  # (p, m)
    num_levels = max(x.shape[0], y.shape[0])
    gaps = _quantiles(x_projected, num_levels) - _quantiles(y_projected, num_levels)
    return jnp.sqrt(jnp.mean(gaps**2))


def _pairwise_distances(a: Float[Array, "n d"], b: Float[Array, "m d"]) -> Float[Array, "n m"]:
    """Euclidean distances, with a zero (not NaN) gradient where two points coincide."""
    squared = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def energy_distance(x: Float[Array, "n d"], y: Float[Array, "m d"]) -> Float[Array, ""]:
    """Energy distance `sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|)` of two samples.

    The expectations are plain averages over all pairs (V-statistics, including each
    point with itself), so the value is zero for identical samples and never negative.
    Returning the square root makes it a metric in the units of the data. Uses O(n m d)
    memory.
    """
    cross = jnp.mean(_pairwise_distances(x, y))
    within_x = jnp.mean(_pairwise_distances(x, x))
    within_y = jnp.mean(_pairwise_distances(y, y))
    return jnp.sqrt(jnp.maximum(2.0 * cross - within_x - within_y, 0.0))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, ties sharing their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(unique) < len(values):  # average the ranks within each group of ties
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a
    random negative (ties count one half). 0.5 is chance, 1 perfect separation."""
    positive, negative = np.asarray(positive_scores, np.float64), np.asarray(negative_scores, np.float64)
    ranks = _ranks(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two equally long samples (ties get average ranks)."""
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry)))
