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

# %% [markdown]
# # Astro 3: sampling galaxies from the shipped model
#
# The course ships a UNet trained on our simulated galaxies
# (`course.pretrained.load_galaxy_unet`). Here you write the reverse process that turns
# noise into galaxies, sample from the shipped model in seconds, and check the samples
# the way Smith et al. (2022) did: by comparing the distributions of morphology
# statistics (flux, size, ellipticity, peak) with those of real images.
#
# **Rules.** Images come in batches of shape `(n, 1, h, w)`; the step `t` is one integer
# for the whole batch. Check your work with
# `uv run pytest exercises/astro/test_03_sampling.py` or `uv run grader status`.

# %%
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import morphology, plotting, pretrained, training
from course.data import galaxies as galaxy_data
from course.schedules import DDPMSchedule

# %%
shipped = pretrained.load_galaxy_unet()
model, schedule = shipped.model, shipped.schedule
print(f"{shipped.metadata['parameters']:,} parameters, {schedule.num_steps} diffusion steps")

# %% [markdown]
# The network handles one image; `predict_noise` runs it on a batch, compiled once.
# On a CPU, call such a jitted step from a Python loop rather than putting the whole
# sampler inside `jax.lax.scan`: XLA compiles convolutions inside a loop body into much
# slower code on CPU (jax issue #12868). Pass `t` as an array, so that each new step does
# not trigger a new compilation.

# %%
@eqx.filter_jit
def predict_noise(
    model, x_t: Float[Array, "n c h w"], t: Int[Array, ""], labels: Int[Array, " n"] | None = None
) -> Float[Array, "n c h w"]:
    """The model's noise prediction for a batch of images, all at step t."""
    if labels is None:
        return jax.vmap(model, in_axes=(0, None))(x_t, t)
    return jax.vmap(model, in_axes=(0, None, 0))(x_t, t, labels)


# %% [markdown]
# ## Exercise 1: the denoised estimate
#
# Given the predicted noise, the forward formula
# $x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ can be solved for
# $x_0$:
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\;\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}.$$
#
# This is **Tweedie's formula**: with the exact noise predictor, $\hat x_0$ is the
# posterior mean $E[x_0 \mid x_t]$, the best guess of the clean galaxy in the
# least-squares sense. Write `predict_x0(schedule, x_t, t, eps)` (any shape; `t` one step).

# %% nbgrader={"grade": false, "grade_id": "predict_x0", "locked": false, "schema_version": 3, "solution": true, "task": false}
def predict_x0(
    schedule: DDPMSchedule, x_t: Float[Array, "*shape"], t: Int[Array, ""], eps: Float[Array, "*shape"]
) -> Float[Array, "*shape"]:
    """Tweedie's estimate of the clean image from x_t and the predicted noise."""
    ### BEGIN SOLUTION
    alpha_bar = schedule.alpha_bars[t]
    return (x_t - jnp.sqrt(1.0 - alpha_bar) * eps) / jnp.sqrt(alpha_bar)
    ### END SOLUTION


# %% [markdown]
# Noise held-out galaxies to a few steps and look at what the network recovers in one
# shot: early steps give sharp estimates, late steps a blurry average galaxy.

# %%
test = galaxy_data.load_galaxies("test")
galaxy = test.truth[:1]
rows = []
for t in [100, 300, 500, 700]:
    t = jnp.asarray(t)
    alpha_bar = schedule.alpha_bars[t]
    x_t = jnp.sqrt(alpha_bar) * galaxy + jnp.sqrt(1 - alpha_bar) * jax.random.normal(jax.random.key(int(t)), galaxy.shape)
    rows += [x_t / jnp.sqrt(alpha_bar), predict_x0(schedule, x_t, t, predict_noise(model, x_t, t))]
axes = plotting.show_images(jnp.concatenate(rows + [galaxy]), ncols=9, scale=0.15)
for ax, title in zip(axes, ["x_t, t=100", "x0_hat", "t=300", "x0_hat", "t=500", "x0_hat", "t=700", "x0_hat", "truth"],
                     strict=True):
    ax.set_title(title, fontsize=8)

# %% [markdown]
# ## Exercise 2: the reverse step (DDIM)
#
# Ho et al.'s ancestral sampler needs all $T = 1000$ steps. The DDIM step of Song, Meng
# & Ermon (2021) jumps from step $t$ to any earlier step $s < t$ with the same trained
# network: estimate $\hat x_0$, then re-noise it to the level of step $s$,
#
# $$x_s = \sqrt{\bar\alpha_s}\, \hat x_0 + \sqrt{1 - \bar\alpha_s - \sigma^2}\; \epsilon_\theta(x_t, t) + \sigma z,
# \qquad \sigma = \eta \sqrt{\frac{1 - \bar\alpha_s}{1 - \bar\alpha_t}}\sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_s}},$$
#
# with $z \sim \mathcal{N}(0, I)$ given. $\eta = 0$ is deterministic (DDIM); $\eta = 1$
# with $s = t - 1$ is exactly the ancestral DDPM step. The last step goes to $s = -1$,
# the clean image: take $\bar\alpha_{-1} = 1$ (careful: `alpha_bars[-1]` is the *last*
# entry; use `jnp.where`). Write `ddim_step(schedule, x_t, t, s, eps, z, eta)`.

# %% nbgrader={"grade": false, "grade_id": "ddim_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
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
    # Hint: alpha_bar_s = jnp.where(s >= 0, schedule.alpha_bars[s], 1.0)
    ### BEGIN SOLUTION
    alpha_bar_t = schedule.alpha_bars[t]
    alpha_bar_s = jnp.where(s >= 0, schedule.alpha_bars[s], 1.0)
    x0 = predict_x0(schedule, x_t, t, eps)
    sigma = eta * jnp.sqrt((1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_s))
    direction = jnp.sqrt(jnp.maximum(1.0 - alpha_bar_s - sigma**2, 0.0))
    return jnp.sqrt(alpha_bar_s) * x0 + direction * eps + sigma * z
    ### END SOLUTION


# %% [markdown]
# ## Exercise 3: the sampler
#
# Write `sample(model, schedule, key, num_images, num_steps, eta, labels, image_shape)`:
#
# - split the key as `init_key, loop_key = jax.random.split(key)` and start from
#   `x = jax.random.normal(init_key, (num_images, *image_shape))`;
# - visit the steps `ts = jnp.linspace(T - 1, 0, num_steps).round().astype(jnp.int32)`,
#   each followed by the next one (and the last by `-1`);
# - with `step_keys = jax.random.split(loop_key, num_steps)`, step `i` draws
#   `z = jax.random.normal(step_keys[i], x.shape)`;
# - predict the noise with `predict_noise(model, x, t, labels)` and apply `ddim_step`
#   (compiled: `jax.jit(ddim_step)`, or each of its operations is dispatched on its own).
#
# A plain Python loop over `i` is right here (see above). Return the final images.

# %% nbgrader={"grade": false, "grade_id": "sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
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
    ### BEGIN SOLUTION
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
    ### END SOLUTION


# %% [markdown]
# Sample 64 galaxies with 100 stochastic steps ($\eta = 1$): about half a minute on a
# laptop CPU (`COURSE_QUICK=1`, or `ASTRO_SAMPLING_STEPS`, shortens it; the galaxies are
# then poor). Try $\eta = 0$ and fewer steps: the deterministic sampler carries the
# network's errors to the end, while the noise injected by the stochastic one lets later
# steps correct them. Compare the statistics below for both (for the shipped model, 100
# steps with $\eta = 1$ come closer to the data's fluxes and peaks than $\eta = 0$, though
# not to its shapes).
#
# Each galaxy gets a class label drawn with the classes' frequencies (half the galaxies are
# bulge-dominated), so the samples follow $p(x) = \sum_c p(c)\, p(x \mid c)$. Sampling
# with the label dropped (`labels=None`) targets the same $p(x)$, but that branch of the
# network saw only the 15% of training images whose label was dropped: try it, and watch
# the sizes and peaks come out too alike.

# %%
num_steps = int(os.environ.get("ASTRO_SAMPLING_STEPS", 5 if training.quick_mode() else 100))
labels = jax.random.bernoulli(jax.random.key(1), jnp.mean(test.labels), (64,)).astype(jnp.int32)
samples = sample(model, schedule, jax.random.key(0), 64, num_steps=num_steps, eta=1.0, labels=labels)
plotting.show_images(samples[:16], titles=["generated"] * 16)
plotting.show_images(test.truth[:16], titles=["simulated"] * 16);

# %% [markdown]
# ## Do the samples look like galaxies, statistically?
#
# Compare the distribution of each statistic with the held-out galaxies through the
# Wasserstein-1 distance (the area between the two cumulative distributions). Two
# independent sets of real galaxies of the same size are not at distance zero either:
# that **floor** is the best a model can reach with this many samples. The benchmark
# `benchmarks/astro_quality.py` does this with 1,000 images.

# %%
statistics = {
    "flux": morphology.total_flux,
    "half-light radius": morphology.half_light_radius,
    "ellipticity": morphology.ellipticity,
    "peak": morphology.peak,
}
n = samples.shape[0]
real, other = test.truth[:n], test.truth[n : 2 * n]
fig, axes = plt.subplots(1, 4, figsize=(14, 2.8))
for ax, (name, statistic) in zip(axes, statistics.items(), strict=True):
    generated, held_out, floor_set = (np.asarray(jax.vmap(statistic)(images)) for images in (samples, real, other))
    distance, floor = morphology.wasserstein_1d(generated, held_out), morphology.wasserstein_1d(floor_set, held_out)
    bins = np.histogram_bin_edges(np.concatenate([generated, held_out]), bins=20)
    ax.hist(held_out, bins=bins, alpha=0.5, label="held-out")
    ax.hist(generated, bins=bins, alpha=0.5, label="generated")
    ax.set_title(f"{name}\nW1 {distance:.3g} (floor {floor:.3g})", fontsize=9)
axes[0].legend(fontsize=8)

# %% [markdown]
# With 1,000 samples of 300 steps, labels drawn as above (`benchmarks/astro_quality.py`),
# the shipped model is within 1.5 times the floor on flux, size and peak, but not on the
# galaxies' shapes: the ellipticity distance is about 6 times the floor. The mean
# ellipticity is right (0.076 against 0.077), but the shapes are too alike (standard
# deviation 0.040 against 0.051): too few galaxies are as round as the data's roundest or
# as elongated as its most elongated. Look at the samples with a stretch that shows faint
# light (`np.arcsinh(image / 0.005)`): their outskirts are lumpy where the simulated
# galaxies are smooth, and a lump gives a round galaxy a shape. The training script
# (`pretraining.galaxy_unet`) lists what wider networks, longer training and
# other choices scored; none closed this gap.
