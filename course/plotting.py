"""Matplotlib helpers for 2D samples, densities, vector fields, sampling trajectories,
attention maps and images.

Every function returns what it drew on (an Axes, or an animation) and never calls
`plt.show()`, so it works the same in notebooks, scripts and headless tests.
"""

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, ArrayLike, Float
from matplotlib.animation import Animation, FuncAnimation, PillowWriter
from matplotlib.axes import Axes

DEFAULT_FPS = 12.0


def _new_axes() -> Axes:
    _, ax = plt.subplots()
    return ax


def _grid(lim: int | float, resolution: int) -> tuple[np.ndarray, np.ndarray, Float[Array, "r2 2"]]:
    """A `resolution x resolution` grid over `[-lim, lim]^2`, as meshes and as points."""
    ticks = np.linspace(-lim, lim, resolution)
    xx, yy = np.meshgrid(ticks, ticks)
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=-1), dtype=float)
    return xx, yy, points


def _evaluate_on_points(fn: Callable, points: Float[Array, "r2 2"]) -> np.ndarray:
    """Apply a one-point function to every point (vmapped and jitted)."""
    return np.asarray(jax.jit(jax.vmap(fn))(points))


def scatter(
    samples: Float[ArrayLike, "n 2"],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    lim: int | float | None = None,
    **kwargs,
) -> Axes:
    """Scatter plot of 2D samples with small points and equal aspect, on `[-lim, lim]^2` if
    `lim` is given; `kwargs` go to `Axes.scatter` and override the defaults `s=2`,
    `alpha=0.5` and no marker edges."""
    ax = _new_axes() if ax is None else ax
    samples = np.asarray(samples)
    style = {"s": 2, "alpha": 0.5}
    if not {"linewidths", "linewidth", "lw"} & kwargs.keys():
        style["linewidths"] = 0
    ax.scatter(samples[:, 0], samples[:, 1], **(style | kwargs))
    ax.set_aspect("equal")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_log_density(
    log_prob_fn: Callable[[Float[Array, " 2"]], Float[Array, ""]],
    *,
    lim: int | float = 3.0,
    resolution: int = 200,
    ax: Axes | None = None,
    **kwargs,
) -> Axes:
    """Image of `log_prob_fn` (which takes one 2D point) over the square `[-lim, lim]^2`;
    `kwargs` go to `Axes.imshow` (`cmap`, `vmin`, ...)."""
    ax = _new_axes() if ax is None else ax
    _, _, points = _grid(lim, resolution)
    values = _evaluate_on_points(log_prob_fn, points).reshape(resolution, resolution)
    ax.imshow(values, origin="lower", extent=(-lim, lim, -lim, lim), **({"cmap": "viridis"} | kwargs))
    ax.set_aspect("equal")
    return ax


def plot_vector_field(
    field_fn: Callable[[Float[Array, " 2"]], Float[Array, " 2"]],
    *,
    lim: int | float = 3.0,
    resolution: int = 20,
    ax: Axes | None = None,
    **kwargs,
) -> Axes:
    """Arrows of a vector field such as a score (`field_fn` takes one 2D point) on a
    `resolution x resolution` grid over `[-lim, lim]^2`; `kwargs` go to `Axes.quiver`."""
    ax = _new_axes() if ax is None else ax
    xx, yy, points = _grid(lim, resolution)
    vectors = _evaluate_on_points(field_fn, points).reshape(resolution, resolution, 2)
    ax.quiver(xx, yy, vectors[..., 0], vectors[..., 1], **kwargs)
    ax.set_aspect("equal")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    return ax


def animate_trajectory(
    trajectory: Float[ArrayLike, "steps n 2"],
    *,
    lim: int | float = 3.0,
    max_frames: int = 60,
    interval: int = 80,
) -> FuncAnimation:
    """Animate point clouds over sampling steps, `interval` milliseconds per frame.

    At most `max_frames` evenly spaced steps are shown, always including the first and
    the last. The figure is closed so that notebooks do not also draw a still copy: show
    the animation with `IPython.display.HTML(anim.to_jshtml())` or write it with `save_gif`.
    """
    trajectory = np.asarray(trajectory)
    num_steps = trajectory.shape[0]
    evenly_spaced = np.linspace(0, num_steps - 1, min(num_steps, max_frames)).round()
    frames = [int(step) for step in np.unique(evenly_spaced)]
    fig, ax = plt.subplots()
    points = ax.scatter(trajectory[0, :, 0], trajectory[0, :, 1], s=2, alpha=0.5, linewidths=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")

    def draw(step: int):
        points.set_offsets(trajectory[step])
        ax.set_title(f"step {step + 1} / {num_steps}")
        return (points,)

    animation = FuncAnimation(fig, draw, frames=frames, interval=interval)
    plt.close(fig)
    return animation


def save_gif(animation: Animation, path: str | PathLike, *, fps: int | float | None = None) -> Path:
    """Write `animation` to a GIF file with Pillow and return its path.

    `fps` defaults to the animation's own frame rate (12.5 for `animate_trajectory`'s
    default 80 ms interval).
    """
    if fps is None:
        timer = animation.event_source
        fps = 1000.0 / timer.interval if timer is not None else DEFAULT_FPS
    path = Path(path)
    animation.save(path, writer=PillowWriter(fps=fps))
    return path


def plot_attention_maps(
    weights: Float[ArrayLike, "layers heads queries keys"],
    *,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> np.ndarray:
    """One heat map per layer (rows) and head (columns); row `i` of a map is how query `i`
    spreads its attention over the keys. Returns the grid of Axes.

    Labels (the tokens, say) go on the axes of the first column and the last row.
    """
    weights = np.asarray(weights)
    if weights.ndim != 4:
        raise ValueError(f"weights must have shape (layers, heads, queries, keys), got {weights.shape}.")
    num_layers, num_heads, num_queries, num_keys = weights.shape
    size = 1.2 + 0.18 * max(num_queries, num_keys)
    fig, axes = plt.subplots(num_layers, num_heads, figsize=(size * num_heads, size * num_layers),
                             squeeze=False, constrained_layout=True)
    for layer in range(num_layers):
        for head in range(num_heads):
            ax = axes[layer, head]
            image = ax.imshow(weights[layer, head], vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize="small")
            ax.set_xticks(range(num_keys), key_labels if key_labels is not None and layer == num_layers - 1
                          else [""] * num_keys)
            ax.set_yticks(range(num_queries), query_labels if query_labels is not None and head == 0
                          else [""] * num_queries)
            ax.tick_params(length=0, labelsize="x-small")
    axes[-1, 0].set_xlabel("key")
    axes[-1, 0].set_ylabel("query")
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    if title is not None:
        fig.suptitle(title)
    return axes


def show_images(
    images: Float[ArrayLike, "n *c h w"],
    *,
    ncols: int = 8,
    titles: list[str] | None = None,
    scale: float | None = None,
    size: float = 1.4,
    cmap: str = "magma",
) -> np.ndarray:
    """Show a batch of single-band images in a grid, on a common asinh stretch.

    Astronomers show galaxies on an `arcsinh` stretch, linear near zero and logarithmic for
    bright pixels, so that faint outskirts and bright cores are visible together;
    `scale` sets where the stretch turns over (default: a tenth of the 99th percentile of
    the batch). Returns the array of Axes, one per image.
    """
    images = np.asarray(images)
    images = images.reshape((images.shape[0],) + images.shape[-2:])
    if scale is None:
        scale = max(float(np.percentile(images, 99)) / 10.0, 1e-12)
    stretched = np.arcsinh(images / scale)
    vmin, vmax = 0.0, float(np.max(stretched))
    nrows = -(-images.shape[0] // ncols)
    ncols = min(ncols, images.shape[0])
    _, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < images.shape[0]:
            ax.imshow(stretched[i], cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    return axes.ravel()[: images.shape[0]]
