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

check = exercise_checks("astro/04_reconstruction", globals())

# %% [markdown]
# # Astro 4: reconstruction with a diffusion prior
#
# A telescope never sees the galaxy $x$ itself: the atmosphere and optics blur it with
# the point-spread function (PSF) and the sky adds noise,
#
# $$y = A x + \sigma n, \qquad n \sim \mathcal{N}(0, I),$$
#
# where $A$ convolves with the PSF. Recovering $x$ from $y$ is an ill-posed inverse
# problem: many galaxies blur to nearly the same image, and inverting $A$ naively
# amplifies the noise. Bayes' rule splits the answer into what the data say and what
# galaxies look like:
#
# $$\nabla_x \log p(x \mid y) = \nabla_x \log p(y \mid x) + \nabla_x \log p(x).$$
#
# The trained diffusion model knows the second term, the **score of the prior**, at every
# noise level. In this notebook you use it to denoise galaxies (Tweedie's formula) and to
# deconvolve them by **diffusion posterior sampling** (Chung et al. 2023), and compare
# with the classical Wiener and Richardson-Lucy deconvolutions.
#
# **Rules.** Images come in batches of shape `(n, 1, h, w)`. Check your work with
# `uv run pytest exercises/astro/test_04_reconstruction.py` or `uv run grader status`.

# %%
import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import skimage.restoration
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import plotting, pretrained, training
from course.data import galaxies as galaxy_data
from course.schedules import DDPMSchedule

# %% [markdown]
# Your answers of notebooks 1 and 3, given here so that this notebook stands alone:

# %%
@eqx.filter_jit
def predict_noise(model, x_t: Float[Array, "n c h w"], t: Int[Array, ""]) -> Float[Array, "n c h w"]:
    """The model's noise prediction for a batch of images, all at step t."""
    return jax.vmap(model, in_axes=(0, None))(x_t, t)


def noise_level(schedule: DDPMSchedule, t: Int[Array, "*batch"]) -> Float[Array, "*batch"]:
    """sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t): x_t / sqrt(alpha_bar_t) = x_0 + sigma_t noise."""
    return jnp.sqrt((1.0 - schedule.alpha_bars[t]) / schedule.alpha_bars[t])


def matching_step(schedule: DDPMSchedule, sigma: Float[Array, "*batch"]) -> Int[Array, "*batch"]:
    """The first step whose noise level reaches sigma (clipped to T - 1)."""
    levels = noise_level(schedule, jnp.arange(schedule.num_steps))
    return jnp.minimum(jnp.searchsorted(levels, sigma), schedule.num_steps - 1)


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


# %%
shipped = pretrained.load_galaxy_unet()
model, schedule = shipped.model, shipped.schedule
test = galaxy_data.load_galaxies("test")
num_galaxies = 8 if training.quick_mode() else 16
truth = test.truth[:num_galaxies]

# %% [markdown]
# ## Exercise 1: denoising with Tweedie's formula
#
# First without blur: $y = x + \sigma n$. In notebook 1 you found the step $t$ whose
# noise level $\sigma_t$ matches $\sigma$; then $\sqrt{\bar\alpha_t}\, y$ looks like a
# sample $x_t$ of the forward process, and one call of the network gives Tweedie's
# estimate $\hat x_0 = E[x \mid x_t]$, the posterior mean: the least-squares best
# denoised galaxy under the learned prior.
#
# Write `tweedie_denoise(model, schedule, y, sigma)` for a batch `y` with noise of
# standard deviation `sigma` (a float): `t = matching_step(schedule, sigma)`,
# $x_t = \sqrt{\bar\alpha_t}\, y$, then `predict_noise` and `predict_x0`.

# %% nbgrader={"grade": false, "grade_id": "tweedie_denoise", "locked": false, "schema_version": 3, "solution": true, "task": false}
def tweedie_denoise(
    model, schedule: DDPMSchedule, y: Float[Array, "n c h w"], sigma: float
) -> Float[Array, "n c h w"]:
    """The posterior mean of clean images given y = x + sigma * noise, in one network call."""
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'tweedie_denoise' is not done yet: replace this line with your code.")


# %%
check("tweedie_denoise")


# %% [markdown]
# Denoise galaxies drowned in noise five times the sky level of our survey. The
# peak signal-to-noise ratio, $\mathrm{PSNR} = 10 \log_{10}(\max x^2 / \mathrm{MSE})$,
# measures the reconstruction against the truth (higher is better).

# %%
def psnr(estimate: Float[Array, "n c h w"], truth: Float[Array, "n c h w"]) -> Float[Array, " n"]:
    """Peak signal-to-noise ratio of each image, in decibels, against the true image's peak."""
    mse = jnp.mean((estimate - truth) ** 2, axis=(1, 2, 3))
    return 10.0 * jnp.log10(jnp.max(truth, axis=(1, 2, 3)) ** 2 / mse)


sigma = 5 * galaxy_data.NOISE_SIGMA
noisy = truth + sigma * jax.random.normal(jax.random.key(0), truth.shape)
denoised = tweedie_denoise(model, schedule, noisy, sigma)
print(f"PSNR: noisy {float(jnp.mean(psnr(noisy, truth))):.1f} dB, "
      f"denoised {float(jnp.mean(psnr(denoised, truth))):.1f} dB")
plotting.show_images(jnp.concatenate([noisy[:6], denoised[:6], truth[:6]]), ncols=6, scale=0.1);

# %% [markdown]
# ## The deconvolution problem
#
# Now with the PSF. `galaxy_data.psf_image()` is the PSF sampled on a 15x15 grid and
# `galaxy_data.convolve_psf` applies it; our observations are $y = A x + \sigma n$ with
# the sky noise of the survey.

# %%
psf = galaxy_data.psf_image()
sigma_y = galaxy_data.NOISE_SIGMA


def blur(images: Float[Array, "n c h w"]) -> Float[Array, "n c h w"]:
    """The forward operator A: convolution of each image with the PSF."""
    return jax.vmap(galaxy_data.convolve_psf, in_axes=(0, None))(images, psf)


observed = blur(truth) + sigma_y * jax.random.normal(jax.random.key(1), truth.shape)
plotting.show_images(jnp.concatenate([truth[:6], observed[:6]]), ncols=6, scale=0.1);

# %% [markdown]
# ## Exercise 2: the likelihood score
#
# Diffusion posterior sampling runs the reverse process but steers each step towards
# the data. At step $t$ the clean image is unknown; DPS (Chung et al. 2023) replaces it by
# Tweedie's estimate $\hat x_0(x_t)$ and the likelihood by a Gaussian around its blurred
# version,
#
# $$\log p(y \mid x_t) \approx -\frac{\|y - A\,\hat x_0\|^2}{2 v_t} + \text{const}.$$
#
# The variance $v_t$ is the noise variance $\sigma^2$ plus the uncertainty of
# $\hat x_0$, large early in the reverse process and vanishing at its end. Its gradient
# with respect to $x_t$ is the chain rule: the gradient with respect to $\hat x_0$, times
# the Jacobian $\partial \hat x_0 / \partial x_t$. Chung et al. backpropagate through the
# network for that Jacobian, which costs a backward pass per step and needs a tuned step
# size to stay stable. We use what it is for a Gaussian prior of pixel variance $P$,
# $\partial \hat x_0 / \partial x_t = \sqrt{\bar\alpha_t}\,P / (\bar\alpha_t P + 1 - \bar\alpha_t)$
# (a number, `tweedie_gain`): cheap, stable, and exact where it matters most, at the end
# of the reverse process where it tends to 1. Both helpers follow from the Gaussian
# prior; they are given.

# %%
PRIOR_VARIANCE = 0.1  # a rough scale of the pixel variance of a galaxy's bright core


def likelihood_variance(schedule: DDPMSchedule, t: Int[Array, ""], sigma_y: float) -> Float[Array, ""]:
    """v_t = sigma_y^2 + P s_t^2 / (P + s_t^2) with s_t = noise_level(t): the noise variance
    plus the variance of x_0 given x_t under a Gaussian prior of variance P."""
    level = noise_level(schedule, t) ** 2
    return sigma_y**2 + PRIOR_VARIANCE * level / (PRIOR_VARIANCE + level)


def tweedie_gain(schedule: DDPMSchedule, t: Int[Array, ""]) -> Float[Array, ""]:
    """d x0_hat / d x_t = sqrt(abar) P / (abar P + 1 - abar) under a Gaussian prior of variance P."""
    alpha_bar = schedule.alpha_bars[t]
    return jnp.sqrt(alpha_bar) * PRIOR_VARIANCE / (alpha_bar * PRIOR_VARIANCE + 1.0 - alpha_bar)


# %% [markdown]
# Write `likelihood_score(schedule, x0_hat, t, y, forward, sigma_y)`: the gradient with
# respect to `x0_hat` of the sum over the batch of
# $-\|y - A \hat x_0\|^2 / (2 v_t)$ (each image only depends on its own $\hat x_0$, so
# this is each image's gradient; `jax.grad` computes it, through `forward`), times
# `tweedie_gain(schedule, t)`.

# %% nbgrader={"grade": false, "grade_id": "likelihood_score", "locked": false, "schema_version": 3, "solution": true, "task": false}
def likelihood_score(
    schedule: DDPMSchedule,
    x0_hat: Float[Array, "n c h w"],
    t: Int[Array, ""],
    y: Float[Array, "n c h w"],
    forward: Callable[[Float[Array, "n c h w"]], Float[Array, "n c h w"]],
    sigma_y: float,
) -> Float[Array, "n c h w"]:
    """The gradient of log p(y | x_t), approximated as described above."""
    # Hint: variance = likelihood_variance(schedule, t, sigma_y)
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'likelihood_score' is not done yet: replace this line with your code.")


# %%
check("likelihood_score")


# %% [markdown]
# ## Exercise 3: diffusion posterior sampling
#
# The network predicts the noise, which is the prior score up to a factor:
# $\nabla \log p_t(x_t) = -\epsilon_\theta(x_t, t) / \sqrt{1 - \bar\alpha_t}$. Adding the
# likelihood score gives the posterior score, which reads as a corrected noise prediction
#
# $$\epsilon_{\text{post}} = \epsilon_\theta(x_t, t) - \sqrt{1 - \bar\alpha_t}\;
# \nabla_{x_t} \log p(y \mid x_t).$$
#
# Sampling with $\epsilon_{\text{post}}$ instead of $\epsilon_\theta$ draws galaxies that
# both look like galaxies and blur into the observation. Write
# `deconvolve(model, schedule, y, forward, sigma_y, key, num_steps, eta)`, the sampler of
# notebook 3 with the corrected noise:
#
# - `init_key, loop_key = jax.random.split(key)`;
#   `x = jax.random.normal(init_key, y.shape)`;
# - `ts = jnp.linspace(T - 1, 0, num_steps).round().astype(jnp.int32)`, each step going
#   to the next one (the last to `-1`); `step_keys = jax.random.split(loop_key, num_steps)`
#   and `z = jax.random.normal(step_keys[i], x.shape)`;
# - at step `t`: `eps = predict_noise(model, x, t)`, $\hat x_0$ from `predict_x0`, the
#   likelihood score at $\hat x_0$, $\epsilon_{\text{post}}$, then
#   `ddim_step(schedule, x, t, s, eps_post, z, eta)`.

# %% nbgrader={"grade": false, "grade_id": "deconvolve", "locked": false, "schema_version": 3, "solution": true, "task": false}
def deconvolve(
    model,
    schedule: DDPMSchedule,
    y: Float[Array, "n c h w"],
    forward: Callable[[Float[Array, "n c h w"]], Float[Array, "n c h w"]],
    sigma_y: float,
    key: PRNGKeyArray,
    num_steps: int = 100,
    eta: float = 1.0,
) -> Float[Array, "n c h w"]:
    """Diffusion posterior sampling: one reconstruction of each observed image y."""
    # Hint: a jitted inner function guided_step(x, t, s, eps, z), closing over y, forward and
    # the schedule, keeps each step fast (otherwise its many small operations run one by one).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'deconvolve' is not done yet: replace this line with your code.")


# %%
check("deconvolve")

# %% [markdown]
# Deconvolve the observations (`ASTRO_SAMPLING_STEPS`, or `COURSE_QUICK=1`, shortens the
# sampler).

# %%
num_steps = int(os.environ.get("ASTRO_SAMPLING_STEPS", 5 if training.quick_mode() else 100))
reconstructed = deconvolve(model, schedule, observed, blur, sigma_y, jax.random.key(2), num_steps=num_steps)

# %% [markdown]
# ## Against the classical deconvolutions
#
# Wiener filtering (the best *linear* deconvolution for a stationary Gaussian signal)
# and Richardson-Lucy (the iterative maximum-likelihood deconvolution for Poisson noise,
# stopped early as regularisation), both from scikit-image. A good reconstruction should
# also explain the data to the noise level: the reduced chi-square of its residual,
# $\chi^2_\nu = \|y - A\hat x\|^2 / (N \sigma^2)$, should be near 1 (below 1: it fits the
# noise; above: it does not explain the data).

# %%
def classical(observed: Float[Array, "n c h w"], method: str) -> Float[Array, "n c h w"]:
    """Wiener (balance 0.1) or Richardson-Lucy (30 iterations) deconvolution of each image."""
    out = []
    for image in np.asarray(observed)[:, 0]:
        if method == "wiener":
            out.append(skimage.restoration.wiener(image, np.asarray(psf), balance=0.1, clip=False))
        else:
            out.append(skimage.restoration.richardson_lucy(np.clip(image, 0, None), np.asarray(psf), num_iter=30,
                                                           clip=False))
    return jnp.asarray(np.stack(out)[:, None], dtype=jnp.float32)


def reduced_chi2(estimate: Float[Array, "n c h w"]) -> Float[Array, " n"]:
    return jnp.mean((observed - blur(estimate)) ** 2, axis=(1, 2, 3)) / sigma_y**2


estimates = {
    "Wiener": classical(observed, "wiener"),
    "Richardson-Lucy": classical(observed, "richardson_lucy"),
    "diffusion prior (DPS)": reconstructed,
}
for name, estimate in estimates.items():
    print(f"{name:>22}: PSNR {float(jnp.mean(psnr(estimate, truth))):5.1f} dB, "
          f"reduced chi2 {float(jnp.mean(reduced_chi2(estimate))):6.2f}")
axes = plotting.show_images(jnp.concatenate([observed[:6], *[e[:6] for e in estimates.values()], truth[:6]]),
                            ncols=6, scale=0.1)
for row, name in enumerate(["observed", "Wiener", "Richardson-Lucy", "DPS", "truth"]):
    axes[6 * row].set_title(name, fontsize=8)

# %% [markdown]
# Because DPS *samples* the posterior, two runs with different keys give two different
# galaxies, each consistent with the data; their spread shows what the data leave
# uncertain (usually the faint outskirts and the exact shape of the core). The benchmark
# `benchmarks/astro_quality.py` scores all three methods on 100 held-out galaxies.
#
# ## Out of distribution: a real Hubble image
#
# A prior only knows what it was trained on. Feed it a cutout of the Hubble Deep Field
# (shipped with scikit-image), blurred and noised the same way: the reconstruction turns
# whatever it sees into smooth bulge + disk galaxies, like the ones it learned. That is
# both the power and the danger of a learned prior.

# %%
import skimage.data  # noqa: E402

field = skimage.data.hubble_deep_field()[:, :, 0].astype(np.float32)
cutout = jnp.asarray(field[250:314:2, 350:414:2] / 255.0 * 2.0)[None, None]  # 32x32, about galaxy brightness
seen = blur(cutout) + sigma_y * jax.random.normal(jax.random.key(3), cutout.shape)
recovered = deconvolve(model, schedule, seen, blur, sigma_y, jax.random.key(4), num_steps=num_steps)
axes = plotting.show_images(jnp.concatenate([cutout, seen, recovered]), ncols=3, scale=0.1, size=2.5)
for ax, title in zip(axes, ["Hubble cutout", "blurred + noise", "DPS reconstruction"], strict=True):
    ax.set_title(title, fontsize=9)
