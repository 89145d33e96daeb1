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

check = exercise_checks("astro/01_galaxies_and_noising", globals())

# %% [markdown]
# # Astro 1: galaxy images and the forward process
#
# Smith et al. (2022, *Realistic galaxy image simulation via score-based generative
# models*) trained a DDPM on galaxy cutouts of the DESI Legacy Surveys and showed that its
# samples reproduce the morphology statistics of real galaxies. This track rebuilds that
# pipeline at laptop scale, and then uses the trained model as a **prior** to
# reconstruct galaxies from blurred, noisy observations.
#
# Our galaxies come from a physics simulator (`course.data.galaxies`, drawn with
# `jax_galsim`): an exponential **disk** plus a compact **bulge**, each with its own
# half-light radius, sheared to a random ellipticity, rotated, given a random flux and
# bulge fraction. For each galaxy we keep three images, 32x32 pixels of 0.262 arcsec:
#
# - `truth`: the galaxy itself, integrated over each pixel, at a resolution (0.2 arcsec)
#   far sharper than the telescope's;
# - `convolved`: the galaxy seen through the atmosphere and telescope, the point-spread
#   function (PSF, here a Moffat profile of 1.1 arcsec FWHM);
# - `observed`: `convolved` plus Gaussian sky noise.
#
# and the simulation parameters, the ground truth an astronomer never has for real data.
#
# **Rules.** Images come in batches of shape `(n, 1, 32, 32)`: one band, channels first,
# as equinox's convolutions want. Check your work with
# `uv run pytest exercises/astro/test_01_galaxies_and_noising.py` or `uv run grader status`.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float, Int

from course import morphology, plotting
from course.data import galaxies as galaxy_data
from course.schedules import DDPMSchedule

# %% [markdown]
# The training set (8,000 galaxies) is simulated on first use, about a minute, then read
# from a cache folder (`course.data.galaxies.cache_dir()`).

# %%
train = galaxy_data.load_galaxies("train")
print("truth images:", train.truth.shape, " labels (1 = bulge-dominated):", train.labels[:8])
plotting.show_images(train.truth[:8], titles=[f"B/T = {b:.2f}" for b in train.params.bulge_fraction[:8]])
plotting.show_images(train.convolved[:8], titles=["through the PSF"] * 8)
plotting.show_images(train.observed[:8], titles=["observed"] * 8);

# %% [markdown]
# The images are shown on an `arcsinh` stretch, as astronomers do: faint disks and bright
# bulges are visible at once. Here are some statistics of the training set, which the
# generated galaxies will have to match (`course.morphology`):

# %%
stats = {
    "flux": jax.vmap(morphology.total_flux)(train.truth),
    "half-light radius (pixels)": jax.vmap(morphology.half_light_radius)(train.truth),
    "ellipticity": jax.vmap(morphology.ellipticity)(train.truth),
    "peak": jax.vmap(morphology.peak)(train.truth),
}
fig, axes = plt.subplots(1, 4, figsize=(14, 2.8))
for ax, (name, values) in zip(axes, stats.items(), strict=True):
    ax.hist(np.asarray(values), bins=40)
    ax.set_title(name)

# %% [markdown]
# ## The noise schedule
#
# A DDPM destroys an image in $T$ small Gaussian steps. With
# $\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)$ (`schedule.alpha_bars[t]`, for
# $t = 0, \dots, T-1$), the noisy image at step $t$ is, in one shot,
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon,
# \qquad \epsilon \sim \mathcal{N}(0, I).$$
#
# We use the **cosine** schedule of Nichol & Dhariwal (2021), which destroys information
# more gradually than the linear one: on small images the linear schedule turns most of
# its steps into near pure noise.

# %%
schedule = DDPMSchedule.cosine(num_steps=1000)
linear = DDPMSchedule.linear(num_steps=1000)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(schedule.alpha_bars, label="cosine")
ax.plot(linear.alpha_bars, label="linear")
ax.set_xlabel("step t")
ax.set_ylabel(r"$\bar\alpha_t$")
ax.legend()

# %% [markdown]
# ## Exercise 1: forward noising of a batch of images
#
# Write `forward_noise(schedule, images, t, noise)` for a **batch** of images of shape
# `(n, 1, h, w)`, each with its own step `t[i]` (an integer array of shape `(n,)`) and its
# noise `noise[i]`. Broadcasting does the work: `schedule.alpha_bars[t]` has shape `(n,)`,
# reshape it so that it multiplies each image.

# %% nbgrader={"grade": false, "grade_id": "forward_noise", "locked": false, "schema_version": 3, "solution": true, "task": false}
def forward_noise(
    schedule: DDPMSchedule,
    images: Float[Array, "n c h w"],
    t: Int[Array, " n"],
    noise: Float[Array, "n c h w"],
) -> Float[Array, "n c h w"]:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, for each image of the batch."""
    # Hint: schedule.alpha_bars[t][:, None, None, None] has shape (n, 1, 1, 1).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'forward_noise' is not done yet: replace this line with your code.")


# %%
check("forward_noise")

# %% [markdown]
# One galaxy dissolving into noise:

# %%
steps = jnp.array([0, 100, 250, 400, 550, 700, 850, 999])
galaxy = jnp.repeat(train.truth[:1], len(steps), axis=0)
noisy = forward_noise(schedule, galaxy, steps, jax.random.normal(jax.random.key(0), galaxy.shape))
for ax, t in zip(plotting.show_images(noisy, scale=0.3), steps, strict=True):
    ax.set_title(f"t = {t}", fontsize=8)

# %% [markdown]
# ## Exercise 2: the noise level of a step
#
# Divide $x_t$ by $\sqrt{\bar\alpha_t}$ and it reads as *the galaxy plus Gaussian noise*:
#
# $$\frac{x_t}{\sqrt{\bar\alpha_t}} = x_0 + \sigma_t\, \epsilon, \qquad
# \sigma_t = \sqrt{\frac{1 - \bar\alpha_t}{\bar\alpha_t}}.$$
#
# $\sigma_t$ is the noise level of step $t$ in the units of the image, the same units as
# the sky noise of a telescope image. Write `noise_level(schedule, t)` for an integer
# array `t` of any shape.

# %% nbgrader={"grade": false, "grade_id": "noise_level", "locked": false, "schema_version": 3, "solution": true, "task": false}
def noise_level(schedule: DDPMSchedule, t: Int[Array, "*batch"]) -> Float[Array, "*batch"]:
    """sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), elementwise."""
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'noise_level' is not done yet: replace this line with your code.")


# %%
check("noise_level")


# %% [markdown]
# ## Exercise 3: which step matches an observation?
#
# A telescope image is $y = x_0 + \sigma\, n$ with a known sky noise $\sigma$ (here
# `galaxy_data.NOISE_SIGMA`, ignoring the PSF for now). Since $\sigma_t$ grows with $t$, there is a
# step at which the diffusion has added exactly that much noise: **an observed image is a
# rescaled $x_t$**, and a diffusion model can denoise it from there (notebook 4).
#
# Write `matching_step(schedule, sigma)`: the smallest step `t` with
# `noise_level(schedule, t) >= sigma`, elementwise for an array `sigma`, and `T - 1` when
# no step is noisy enough. `jnp.searchsorted` finds it in a sorted array.

# %% nbgrader={"grade": false, "grade_id": "matching_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def matching_step(schedule: DDPMSchedule, sigma: Float[Array, "*batch"]) -> Int[Array, "*batch"]:
    """The first step whose noise level reaches sigma (clipped to T - 1)."""
    # Hint: the noise levels of all steps, noise_level(schedule, jnp.arange(T)), increase with t.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'matching_step' is not done yet: replace this line with your code.")


# %%
check("matching_step")

# %% [markdown]
# The noise levels span many decades; the sky noise of our observations sits early in
# the schedule, and the faint outskirts of a galaxy are lost in the noise long before its
# core:

# %%
levels = noise_level(schedule, jnp.arange(schedule.num_steps))
t_sky = int(matching_step(schedule, jnp.asarray(galaxy_data.NOISE_SIGMA)))
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(levels)
ax.axhline(galaxy_data.NOISE_SIGMA, color="k", ls=":", label=f"sky noise: step {t_sky}")
ax.axhline(float(jnp.median(stats["peak"])), color="C1", ls="--", label="median galaxy peak")
ax.set_xlabel("step t")
ax.set_ylabel(r"$\sigma_t$")
ax.legend()
print(f"The observed images look like x_t / sqrt(alpha_bar_t) at step t = {t_sky}.")
