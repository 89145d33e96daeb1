import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.quiver import Quiver
from PIL import Image

from course import plotting
from course.data import gaussian_mixture_2d


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_scatter(getkey):
    samples = jax.random.normal(getkey(), (100, 2))
    ax = plotting.scatter(samples, title="samples", color="red")
    assert isinstance(ax, Axes)
    assert ax.get_title() == "samples"
    assert ax.get_aspect() == 1.0
    np.testing.assert_allclose(ax.collections[0].get_offsets(), samples)
    assert plotting.scatter(samples, ax=ax) is ax
    framed = plotting.scatter(samples, lim=3.0)
    assert framed.get_xlim() == (-3.0, 3.0) and framed.get_ylim() == (-3.0, 3.0)


def test_plot_log_density():
    mixture = gaussian_mixture_2d()
    ax = plotting.plot_log_density(mixture.log_prob, lim=2.0, resolution=30)
    image = ax.get_images()[0].get_array()
    assert image.shape == (30, 30)
    # Row 0 is y = -lim (origin="lower"); the last column is x = +lim.
    np.testing.assert_allclose(image[0, -1], mixture.log_prob(jnp.array([2.0, -2.0])), rtol=1e-5)


def test_plot_vector_field():
    ax = plotting.plot_vector_field(lambda x: -x, lim=1.0, resolution=5)
    quiver = next(c for c in ax.collections if isinstance(c, Quiver))
    np.testing.assert_allclose(quiver.U, -quiver.X)
    np.testing.assert_allclose(quiver.V, -quiver.Y)
    assert quiver.U.size == 25


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")
def test_animate_trajectory_subsamples_frames_and_keeps_the_last(getkey):
    trajectory = jax.random.normal(getkey(), (100, 20, 2))
    animation = plotting.animate_trajectory(trajectory, max_frames=7)
    assert isinstance(animation, FuncAnimation)
    frames = list(animation.new_frame_seq())
    assert len(frames) == 7
    assert frames[0] == 0 and frames[-1] == 99
    short = plotting.animate_trajectory(trajectory[:3], max_frames=60)
    assert list(short.new_frame_seq()) == [0, 1, 2]
    del animation, short  # never rendered: let matplotlib warn here, where it is filtered
    gc.collect()


def test_save_gif_writes_every_frame(getkey, tmp_path):
    trajectory = jax.random.normal(getkey(), (30, 10, 2))
    animation = plotting.animate_trajectory(trajectory, max_frames=5, interval=100)
    path = plotting.save_gif(animation, tmp_path / "trajectory.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 5
        assert gif.info["duration"] == 100


def test_show_images(rng):
    images = rng.random((5, 1, 8, 8)).astype(np.float32)
    axes = plotting.show_images(images, ncols=3, titles=list("abcde"))
    assert len(axes) == 5 and all(isinstance(ax, Axes) for ax in axes)
    assert axes[4].get_title() == "e"
    shown = axes[0].get_images()[0].get_array()
    assert shown.shape == (8, 8)
    # A monotonic stretch: the brightest pixel stays the brightest.
    assert np.unravel_index(np.argmax(shown), shown.shape) == np.unravel_index(np.argmax(images[0, 0]), (8, 8))
