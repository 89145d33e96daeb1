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
# # Astro 2: the denoising loss of a galaxy UNet
#
# A DDPM learns one network $\epsilon_\theta(x_t, t)$ that recognises the noise in a noisy
# image, at every step $t$. Predicting the noise is the same as predicting the **score**
# of the noisy images, $\nabla_{x} \log p_t(x) = -\epsilon / \sqrt{1 - \bar\alpha_t}$, which is
# what lets the trained network both generate galaxies (notebook 3) and act as a prior
# for reconstruction (notebook 4).
#
# The network is the UNet of the course library, `course.nn.UNet`: an encoder-decoder of
# residual convolution blocks, with the step $t$ (and optionally a class label) embedded
# and added inside every block. It handles **one** image of shape `(1, h, w)`:
# `model(x, t)` or `model(x, t, label)`; use `jax.vmap` for batches.
#
# **Rules.** Images come in batches of shape `(n, 1, h, w)`. Use every PRNG key once:
# split it first. Check your work with
# `uv run pytest exercises/astro/test_02_denoising_loss.py` or `uv run grader status`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import pretrained, training
from course.data import galaxies as galaxy_data
from course.nn import UNet, count_parameters
from course.schedules import DDPMSchedule

# %%
schedule = DDPMSchedule.cosine(num_steps=1000)
model = UNet(in_channels=1, channels=(16, 32, 64), key=jax.random.key(0))
print(f"UNet with {count_parameters(model):,} parameters")
x = jnp.zeros((1, 32, 32))
print("one image in, one image out:", model(x, jnp.asarray(10)).shape)

# %% [markdown]
# Pass the step `t` as an **array** (`jnp.asarray(10)`), not a Python number: a jitted
# function is compiled again for every new Python number it is called with, but only
# once for all arrays of the same shape and dtype.
#
# ## Exercise 1: the denoising loss
#
# The simplified DDPM objective (Ho et al. 2020) draws a step and some noise per image,
# noises the image in one shot and regresses the noise:
#
# $$L(\theta) = \mathbb{E}_{x_0, t, \epsilon}\,
# \big\| \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\; t\big) \big\|^2 .$$
#
# Write `denoising_loss(model, schedule, images, key)` for a **batch** `images` of shape
# `(n, 1, h, w)`:
#
# - split the key as `t_key, noise_key = jax.random.split(key)`;
# - draw the steps with `jax.random.randint(t_key, (n,), 0, T)` and the noise with
#   `jax.random.normal(noise_key, images.shape)`;
# - predict the noise of each image with `jax.vmap(model)(x_t, t)`;
# - return the mean of the squared error over the batch *and* the pixels (`jnp.mean`).

# %% nbgrader={"grade": false, "grade_id": "denoising_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def denoising_loss(
    model, schedule: DDPMSchedule, images: Float[Array, "n c h w"], key: PRNGKeyArray
) -> Float[Array, ""]:
    """The epsilon-prediction loss of `model` on a batch of images."""
    # Hint: schedule.alpha_bars[t][:, None, None, None] broadcasts against the batch.
    ### BEGIN SOLUTION
    t_key, noise_key = jax.random.split(key)
    t = jax.random.randint(t_key, (images.shape[0],), 0, schedule.num_steps)
    noise = jax.random.normal(noise_key, images.shape)
    alpha_bar = schedule.alpha_bars[t][:, None, None, None]
    x_t = jnp.sqrt(alpha_bar) * images + jnp.sqrt(1.0 - alpha_bar) * noise
    return jnp.mean((jax.vmap(model)(x_t, t) - noise) ** 2)
    ### END SOLUTION


# %% [markdown]
# Two sanity checks. A network that always predicts zero scores $E[\epsilon^2] = 1$;
# a network that predicts the whole noisy image as noise,
# $\epsilon_\theta(x_t, t) = x_t$, does better on these images, whose pixels are mostly
# empty sky: the UNet has to beat it.

# %%
train = galaxy_data.load_galaxies("train")
images = train.truth[:256]
zero = lambda x, t: jnp.zeros_like(x)
everything_is_noise = lambda x, t: x
for name, baseline in [("predict 0", zero), ("predict x_t", everything_is_noise)]:
    print(f"{name:>12}: loss {float(denoising_loss(baseline, schedule, images, jax.random.key(1))):.3f}")

# %% [markdown]
# ## Exercise 2: a class-conditional loss with label dropout
#
# The galaxies carry labels: `1` when the bulge holds more than half the light
# (bulge-dominated), `0` otherwise (disk-dominated). A UNet built with `num_classes=2`
# takes the label as a third argument, `model(x_t, t, label)`, and the extra label
# `num_classes` (here `2`) means "no label".
#
# To get a conditional **and** an unconditional model from one network, as
# classifier-free guidance needs (Ho & Salimans 2022), replace each label by the "no label"
# class with probability `drop_probability` during training. Write
# `conditional_denoising_loss(model, schedule, images, labels, key, drop_probability)`:
#
# - split the key as `t_key, noise_key, drop_key = jax.random.split(key, 3)`;
# - steps and noise as in exercise 1;
# - `dropped = jax.random.bernoulli(drop_key, drop_probability, (n,))`; where
#   `dropped`, the label becomes `model.num_classes`;
# - predict with `jax.vmap(model)(x_t, t, labels)`; return the mean squared error.

# %% nbgrader={"grade": false, "grade_id": "conditional_denoising_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conditional_denoising_loss(
    model: UNet,
    schedule: DDPMSchedule,
    images: Float[Array, "n c h w"],
    labels: Int[Array, " n"],
    key: PRNGKeyArray,
    drop_probability: float = 0.15,
) -> Float[Array, ""]:
    """The epsilon-prediction loss of a class-conditional model, labels dropped at random."""
    # Hint: jnp.where(dropped, model.num_classes, labels)
    ### BEGIN SOLUTION
    t_key, noise_key, drop_key = jax.random.split(key, 3)
    n = images.shape[0]
    t = jax.random.randint(t_key, (n,), 0, schedule.num_steps)
    noise = jax.random.normal(noise_key, images.shape)
    alpha_bar = schedule.alpha_bars[t][:, None, None, None]
    x_t = jnp.sqrt(alpha_bar) * images + jnp.sqrt(1.0 - alpha_bar) * noise
    dropped = jax.random.bernoulli(drop_key, drop_probability, (n,))
    labels = jnp.where(dropped, model.num_classes, labels)
    return jnp.mean((jax.vmap(model)(x_t, t, labels) - noise) ** 2)
    ### END SOLUTION


# %% [markdown]
# ## Training
#
# `course.training.train` minimises a loss over minibatches. A few hundred steps of a
# smaller UNet take a few minutes on a laptop (`COURSE_QUICK=1` runs a handful); the loss
# falls quickly, then slowly. The model shipped with the course
# (`course.pretrained.load_galaxy_unet`, a wider UNet of 1M parameters) was trained on
# the same galaxies, for 6 minutes on a GPU, by `pretraining.galaxy_unet`
# (whose defaults train a smaller one on a laptop CPU in about 20 minutes), seeing each
# galaxy in one of its 8 orientations in the stamp at random, with two changes. Its UNet sees
# each pixel multiplied by about one over its typical value (from 3 in the galaxies'
# cores to thousands in the nearly empty sky around them) and predicts
# $v = \sqrt{\bar\alpha}\,\epsilon - \sqrt{1-\bar\alpha}\,x_0$ (Salimans & Ho 2022)
# rather than $\epsilon$, which spreads its effort better over the noise levels and the
# pixels (`course.nn.v_prediction` explains why). And its training ends with a short
# phase that adds to this loss, at low noise, the errors of a few weighted moments of the
# image (flux, centre, shape, size), which the pixel loss alone leaves too large. It is
# wrapped to return the noise, so it is used, and scored below, exactly like yours.

# %%
small = UNet(in_channels=1, channels=(8, 16, 32), num_classes=2, key=jax.random.key(2))
data = (train.truth, train.labels)
loss_fn = lambda model, batch, key: conditional_denoising_loss(model, schedule, *batch, key)
small, losses = training.train(
    loss_fn, small, data, key=jax.random.key(3), num_steps=300, batch_size=8 if training.quick_mode() else 32,
    learning_rate=2e-3, steps_per_call=10,
)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses, lw=0.5)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("loss")

# %% [markdown]
# ## Where is denoising hard?
#
# The loss averages over all steps. Split it by step for the shipped model, on held-out
# galaxies: at small $t$ the noise is tiny next to the galaxy and easy to see, at large
# $t$ the image is nearly pure noise and $\epsilon \approx x_t$ again; the hard part is in
# between, where the galaxy and the noise are comparable.

# %%
shipped = pretrained.load_galaxy_unet()
test = galaxy_data.load_galaxies("test")
held_out = test.truth[:64]


@eqx.filter_jit
def loss_at_step(model, t, key):
    noise = jax.random.normal(key, held_out.shape)
    alpha_bar = shipped.schedule.alpha_bars[t]
    x_t = jnp.sqrt(alpha_bar) * held_out + jnp.sqrt(1.0 - alpha_bar) * noise
    predicted = jax.vmap(model, in_axes=(0, None))(x_t, t)
    return jnp.mean((predicted - noise) ** 2)


steps = np.arange(0, shipped.schedule.num_steps, 100 if training.quick_mode() else 25)
per_step = [float(loss_at_step(shipped.model, jnp.asarray(t), jax.random.key(int(t)))) for t in steps]
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(steps, per_step, marker=".")
ax.set_xlabel("step t")
ax.set_ylabel("loss of the shipped model")
print(f"shipped model, {shipped.metadata['parameters']:,} parameters, "
      f"trained {shipped.metadata['steps_done']} steps; held-out loss over all steps "
      f"{float(denoising_loss(shipped.model, shipped.schedule, held_out, jax.random.key(4))):.4f}")
