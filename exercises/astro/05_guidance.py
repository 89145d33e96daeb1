# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %%
# Set-up: installs the course where it is missing (Colab), and makes `check("exercise")`,
# which runs that exercise's visible checks here in the notebook.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("course") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    os.environ.get("COURSE_PIP_SOURCE", "jax-genai-course")], check=True)

from grader.notebook_checks import exercise_checks

check = exercise_checks("astro/05_guidance", globals())

# %% [markdown]
# # Astro 5: bulges or disks on demand, with classifier-free guidance
#
# A survey astronomer often wants galaxies of one kind: bulge-dominated ellipticals to
# test a shape measurement, or disks to calibrate a photometric pipeline. The shipped
# model is **class-conditional**: the label `y = 0` asks for a disk-dominated galaxy,
# `y = 1` for a bulge-dominated one (`course.data.galaxies.DISK_DOMINATED` and
# `BULGE_DOMINATED`: bulge fraction below or above one half). During training the label
# was replaced by "no label" (`y = None`) for 15% of the images, so the same network also
# predicts the noise of an unconditional model.
#
# **Classifier-free guidance** (Ho & Salimans 2022) mixes the two predictions,
#
# $$\tilde\epsilon(x_t, t, y) = \epsilon_\theta(x_t, t, \varnothing)
#     + w \,\big(\epsilon_\theta(x_t, t, y) - \epsilon_\theta(x_t, t, \varnothing)\big),$$
#
# with the **guidance scale** $w$: $w = 0$ is the unconditional model, $w = 1$ the
# conditional one, and $w > 1$ moves further in the direction that makes the label more
# likely. In score terms, $-\tilde\epsilon / \sigma_t$ is the score of
# $p(x)\, p(y \mid x)^w$: guidance sharpens the classes at the cost of diversity.
#
# In this notebook you write the guided noise predictor, a concentration statistic that
# tells bulges from disks, and measure what guidance does to the samples.
#
# **Rules.** Images come in batches of shape `(n, 1, h, w)`. Check your work with
# `uv run pytest exercises/astro/test_05_guidance.py` or `uv run grader status`.

# %%
import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import morphology, plotting, pretrained, training
from course.data import galaxies as galaxy_data
from course.schedules import DDPMSchedule

# %% [markdown]
# Your answers of notebook 3, given here so that this notebook stands alone:

# %%
@eqx.filter_jit
def predict_noise(
    model, x_t: Float[Array, "n c h w"], t: Int[Array, ""], labels: Int[Array, " n"] | None = None
) -> Float[Array, "n c h w"]:
    """The model's noise prediction for a batch of images, all at step t."""
    if labels is None:
        return jax.vmap(model, in_axes=(0, None))(x_t, t)
    return jax.vmap(model, in_axes=(0, None, 0))(x_t, t, labels)


def predict_x0(
    schedule: DDPMSchedule, x_t: Float[Array, "*shape"], t: Int[Array, ""], eps: Float[Array, "*shape"]
) -> Float[Array, "*shape"]:
    """Tweedie's estimate of the clean image from x_t and the predicted noise."""
    alpha_bar = schedule.alpha_bars[t]
    return (x_t - jnp.sqrt(1.0 - alpha_bar) * eps) / jnp.sqrt(alpha_bar)


def ddim_step(
    schedule: DDPMSchedule,
    x_t: Float[Array, "*shape"],
    t: Int[Array, ""],
    s: Int[Array, ""],
    eps: Float[Array, "*shape"],
    z: Float[Array, "*shape"],
    eta: float = 0.0,
) -> Float[Array, "*shape"]:
    """One DDIM step from step t to the earlier step s (s = -1: the clean image)."""
    alpha_bar_t = schedule.alpha_bars[t]
    alpha_bar_s = jnp.where(s >= 0, schedule.alpha_bars[s], 1.0)
    x0 = predict_x0(schedule, x_t, t, eps)
    sigma = eta * jnp.sqrt((1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_s))
    direction = jnp.sqrt(jnp.maximum(1.0 - alpha_bar_s - sigma**2, 0.0))
    return jnp.sqrt(alpha_bar_s) * x0 + direction * eps + sigma * z


def sample(
    model,
    schedule: DDPMSchedule,
    key: PRNGKeyArray,
    num_images: int,
    num_steps: int = 50,
    eta: float = 0.0,
    labels: Int[Array, " n"] | None = None,
    image_shape: tuple[int, ...] = (1, 32, 32),
) -> Float[Array, "n c h w"]:
    """Generate images by DDIM from pure noise, in num_steps steps."""
    init_key, loop_key = jax.random.split(key)
    x = jax.random.normal(init_key, (num_images, *image_shape))
    ts = jnp.linspace(schedule.num_steps - 1, 0, num_steps).round().astype(jnp.int32)
    next_ts = jnp.concatenate([ts[1:], jnp.array([-1], dtype=jnp.int32)])
    step_keys = jax.random.split(loop_key, num_steps)
    step = jax.jit(ddim_step)
    for i in range(num_steps):
        z = jax.random.normal(step_keys[i], x.shape)
        eps = predict_noise(model, x, ts[i], labels)
        x = step(schedule, x, ts[i], next_ts[i], eps, z, eta)
    return x


# %%
shipped = pretrained.load_galaxy_unet()
model, schedule = shipped.model, shipped.schedule
test = galaxy_data.load_galaxies("test")

# %% [markdown]
# ## Exercise 1: the guided noise predictor
#
# Guidance changes only the noise predictor, so write it as one: an `equinox.Module`
# that holds the trained `model` and the `guidance_scale` $w$ and is called like the
# model, on one image `x` at step `t` with the label `y`. Any sampler written for a noise
# predictor (your `sample` of notebook 3) then samples the guided model unchanged.
#
# Complete `ClassifierFreeGuidance.__call__(x, t, y)`: call the model with the label
# `y` and with `None` (no label), and mix the two predictions as above.

# %% nbgrader={"grade": false, "grade_id": "ClassifierFreeGuidance", "locked": false, "schema_version": 3, "solution": true, "task": false}
class ClassifierFreeGuidance(eqx.Module):
    """The noise predictor eps(x, t, None) + w (eps(x, t, y) - eps(x, t, None))."""

    model: Callable
    guidance_scale: float

    def __call__(self, x: Float[Array, "c h w"], t: Int[Array, ""], y: Int[Array, ""]) -> Float[Array, "c h w"]:
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 'ClassifierFreeGuidance' is not done yet: replace this line with your code.")


# %%
check("ClassifierFreeGuidance")


# %% [markdown]
# ## Exercise 2: telling bulges from disks
#
# To check that a sample has the class it was asked for, measure it. Bulges are more
# **concentrated** than disks: their light piles up in the centre. The concentration
# index of Bershady et al. (2000) compares the radii that hold 80% and 20% of the light,
#
# $$C = 5 \log_{10}\frac{r_{80}}{r_{20}},$$
#
# about 2.8 for an exponential disk and above 4 for a de Vaucouleurs bulge.
#
# Write `concentration(image)` for one image of shape `(1, h, w)` with
# `morphology.light_radius(image, fraction)`, the radius about the centroid that holds
# `fraction` of the light.

# %% nbgrader={"grade": false, "grade_id": "concentration", "locked": false, "schema_version": 3, "solution": true, "task": false}
def concentration(image: Float[Array, "1 h w"]) -> Float[Array, ""]:
    """The concentration index 5 log10(r80 / r20) of one galaxy image."""
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'concentration' is not done yet: replace this line with your code.")


# %%
check("concentration")

# %% [markdown]
# On the simulated galaxies, bulges are more concentrated than disks; a cut at
# $C = 3.25$ labels four in five of them right.

# %%
CUT = 3.25
held_out_c = np.asarray(jax.vmap(concentration)(test.truth))
labels = np.asarray(test.labels)
bins = np.linspace(1.5, 7.0, 40)
plt.figure(figsize=(5, 3))
for label, name in [(galaxy_data.DISK_DOMINATED, "disk-dominated"), (galaxy_data.BULGE_DOMINATED, "bulge-dominated")]:
    plt.hist(held_out_c[labels == label], bins=bins, alpha=0.5, label=name)
plt.axvline(CUT, color="k", lw=1)
plt.xlabel("concentration $C$")
plt.legend(fontsize=8)
print(f"cut at C = {CUT}: {np.mean((held_out_c > CUT) == (labels == galaxy_data.BULGE_DOMINATED)):.0%} of the "
      "held-out galaxies labelled right")

# %% [markdown]
# ## What guidance does
#
# Sample disks and bulges at guidance scales 0 (the label is ignored), 1 (the
# conditional model) and 3, and measure the fraction of samples on the right side of the
# cut. With more guidance the classes separate better, and the galaxies of a class look
# more alike. (`ASTRO_SAMPLING_STEPS` or `COURSE_QUICK=1` shorten the sampling; the
# galaxies are then poor.)

# %%
num_steps = int(os.environ.get("ASTRO_SAMPLING_STEPS", 5 if training.quick_mode() else 100))
per_class = 8 if training.quick_mode() else 32
scales = [0.0, 1.0, 3.0]
request = jnp.repeat(jnp.array([galaxy_data.DISK_DOMINATED, galaxy_data.BULGE_DOMINATED]), per_class)
guided = {}
for w in scales:
    guided[w] = sample(ClassifierFreeGuidance(model, w), schedule, jax.random.key(0), request.shape[0],
                       num_steps=num_steps, eta=1.0, labels=request)
    c = np.asarray(jax.vmap(concentration)(guided[w]))
    right = np.mean((c > CUT) == (np.asarray(request) == galaxy_data.BULGE_DOMINATED))
    print(f"w = {w}: {right:.0%} of the samples on the requested side of the cut; "
          f"median C of disks {np.median(c[:per_class]):.2f}, of bulges {np.median(c[per_class:]):.2f}")

# %%
for w in scales:
    rows = jnp.concatenate([guided[w][:6], guided[w][per_class : per_class + 6]])
    plotting.show_images(rows, ncols=12, titles=[f"disk, w={w}"] * 6 + [f"bulge, w={w}"] * 6)

# %% [markdown]
# The same starting noise is used at every scale, so each column follows one galaxy as
# the guidance grows. Too much guidance pushes samples outside the data: compare the
# flux and size distributions of `guided[3.0]` with `test.truth` using
# `morphology.wasserstein_1d`, as in notebook 3, and try $w = 6$.
