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

check = exercise_checks("diffusion/02_score_matching", globals())

# %% [markdown]
# # Diffusion 2: score matching on the swiss roll
#
# Langevin dynamics (notebook 1) samples from $p(x)$ if we know its score
# $\nabla_x \log p(x)$. For real data we know neither $p$ nor its score, only samples.
# **Score matching** fits a network $s_\theta : \mathbb{R}^d \to \mathbb{R}^d$ to the
# score from samples alone. The natural objective,
#
# $$\tfrac12\, \mathbb{E}_{x \sim p} \big\| s_\theta(x) - \nabla_x \log p(x) \big\|^2,$$
#
# contains the unknown score. This notebook writes three losses that have the same
# minimiser and need only samples:
#
# 1. the **implicit** loss of Hyvärinen (2005), with the trace of the Jacobian of $s_\theta$;
# 2. the **sliced** loss of Song et al. (2019), the same idea with random projections,
#    which needs no Jacobian;
# 3. the **denoising** loss of Vincent (2011), which needs no derivative at all and learns
#    the score of the data *blurred by noise*: the loss that diffusion models train with.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Each loss takes a batch `x` of
# shape `(n, d)` and a `score_fn` that handles *one* point of shape `(d,)` (use
# `jax.vmap` for the batch), and returns a scalar: the **mean** over the batch of a
# per-example loss. Use a PRNG key exactly as the exercise says. Check your work with
# `uv run pytest exercises/diffusion/test_02_score_matching.py` or `uv run grader status`.

# %%
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from jaxtyping import Array, Float, PRNGKeyArray

from course import data, plotting, training

ScoreFn = Callable[[Float[Array, " d"]], Float[Array, " d"]]

# %% [markdown]
# The data: 10,000 points of the swiss roll, a thin spiral whose score is large and
# changes direction quickly across the roll.

# %%
roll = data.swiss_roll(jax.random.key(0), 10_000)
ax = plotting.scatter(roll, title="swiss roll")

# %% [markdown]
# ## Exercise 1: implicit score matching
#
# Expanding the square, $\tfrac12\|s_\theta\|^2$ is known, $\tfrac12\|\nabla \log p\|^2$
# does not depend on $\theta$, and the cross term integrates by parts (for $p$ that
# decays fast enough): $-\mathbb{E}_p[s_\theta \cdot \nabla \log p] = -\int s_\theta
# \cdot \nabla p\, dx = \int (\nabla \cdot s_\theta)\, p\, dx$. So, up to a constant,
#
# $$J(\theta) = \mathbb{E}_{x \sim p}\Big[\operatorname{tr}\big(\nabla_x s_\theta(x)\big)
# + \tfrac12 \big\|s_\theta(x)\big\|^2\Big],$$
#
# where $\nabla_x s_\theta(x)$ is the $d \times d$ Jacobian of the score network.
#
# Write `implicit_score_matching_loss(score_fn, x)`: for each row $x_i$ of the batch
# `x` (shape `(n, d)`), compute the Jacobian of `score_fn` at $x_i$ with `jax.jacfwd`,
# and return the mean over the batch of
# $\operatorname{tr}(\nabla s(x_i)) + \tfrac12 \|s(x_i)\|^2$.

# %% nbgrader={"grade": false, "grade_id": "implicit_score_matching_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def implicit_score_matching_loss(score_fn: ScoreFn, x: Float[Array, "n d"]) -> Float[Array, ""]:
    """Hyvärinen's loss: mean over the batch of tr(jacobian of score_fn) + |score_fn|^2 / 2."""
    # Hint: write the loss of one point, then jax.vmap it over the rows of x.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'implicit_score_matching_loss' is not done yet: replace this line with your code.")


# %%
check("implicit_score_matching_loss")

# %% [markdown]
# The loss needs samples only, yet it picks the true score. Take samples of a standard
# normal, whose score is $-x$, and candidate scores $s_c(x) = -c\,x$: the expected loss
# is $d\,(c^2/2 - c)$, smallest at $c = 1$.

# %%
normal_samples = jax.random.normal(jax.random.key(1), (2000, 2))
scales = jnp.linspace(0.0, 2.0, 41)
implicit_losses = jax.jit(
    jax.vmap(lambda c: implicit_score_matching_loss(lambda y: -c * y, normal_samples))
)(scales)

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(scales, implicit_losses)
ax.axvline(1.0, color="k", linestyle=":", label="true score, c = 1")
ax.set_xlabel("c in s(x) = -c x")
ax.set_ylabel("implicit loss")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Exercise 2: sliced score matching
#
# The trace costs $d$ forward passes (one per column of the Jacobian): fine in 2D,
# too slow for a $64 \times 64$ image. Song et al. (2019) project onto random
# directions $v \sim \mathcal{N}(0, I)$ instead. Since $\mathbb{E}[v v^\top] = I$,
# $\mathbb{E}_v[v^\top A v] = \operatorname{tr} A$ and
# $\mathbb{E}_v[(v^\top s)^2] = \|s\|^2$, so
#
# $$J(\theta) = \mathbb{E}_{x}\, \mathbb{E}_{v}\Big[v^\top \big(\nabla_x s_\theta(x)\, v\big)
# + \tfrac12 \big(v^\top s_\theta(x)\big)^2\Big].$$
#
# The product $\nabla_x s_\theta(x)\, v$ is a Jacobian-vector product:
# `s, jv = jax.jvp(score_fn, (x_i,), (v_i,))` returns $s(x_i)$ and
# $\nabla s(x_i)\, v_i$ for about the cost of two evaluations of $s$, whatever $d$.
#
# Write `sliced_score_matching_loss(score_fn, x, key)`: draw **one** projection per
# example, all at once, as `v = jax.random.normal(key, x.shape)` (row $v_i$ goes with
# $x_i$; use `key` for nothing else), and return the mean over the batch of
# $v_i^\top (\nabla s(x_i)\, v_i) + \tfrac12 (v_i^\top s(x_i))^2$. Use `jax.jvp`; do
# not build the Jacobian.

# %% nbgrader={"grade": false, "grade_id": "sliced_score_matching_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sliced_score_matching_loss(
    score_fn: ScoreFn, x: Float[Array, "n d"], key: PRNGKeyArray
) -> Float[Array, ""]:
    """Sliced score matching with one Gaussian projection per example, averaged over the batch."""
    # Hint: jax.vmap a function of (x_i, v_i) over the rows of x and v.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'sliced_score_matching_loss' is not done yet: replace this line with your code.")


# %%
check("sliced_score_matching_loss")


# %% [markdown]
# The sliced loss is random, but its average over keys is the implicit loss. Check it
# on an untrained network and a batch of the roll. (Use a smooth activation such as
# SiLU, not ReLU: the integration by parts behind the implicit loss needs a
# differentiable score, and the Jacobian of a ReLU network jumps at every kink.)

# %%
def score_network(key: PRNGKeyArray) -> eqx.nn.MLP:
    """A fresh, smooth score network R^2 -> R^2."""
    return eqx.nn.MLP(2, 2, width_size=128, depth=3, activation=jax.nn.silu, key=key)


untrained = score_network(jax.random.key(2))
batch = roll[:64]
sliced_losses = eqx.filter_jit(
    jax.vmap(lambda k: sliced_score_matching_loss(untrained, batch, k))
)(jax.random.split(jax.random.key(3), 1000))
implicit_loss = eqx.filter_jit(implicit_score_matching_loss)(untrained, batch)

fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(sliced_losses, bins=50, alpha=0.7, label="sliced loss, 1000 keys")
ax.axvline(implicit_loss, color="k", label="implicit loss")
ax.axvline(sliced_losses.mean(), color="C1", linestyle="--", label="mean of sliced losses")
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# ## Exercise 3: denoising score matching
#
# Vincent (2011) avoids derivatives of $s_\theta$ altogether. Blur each data point with
# Gaussian noise, $\tilde x = x + \sigma \varepsilon$ with $\varepsilon \sim
# \mathcal{N}(0, I)$. The noised points have the density
# $p_\sigma = p * \mathcal{N}(0, \sigma^2 I)$, and the score of the noising kernel is
# known: $\nabla_{\tilde x} \log \mathcal{N}(\tilde x; x, \sigma^2 I) =
# -(\tilde x - x)/\sigma^2 = -\varepsilon / \sigma$. Regressing onto it,
#
# $$J_\sigma(\theta) = \mathbb{E}_{x, \varepsilon}\, \tfrac12
# \Big\| s_\theta(x + \sigma\varepsilon) + \frac{\varepsilon}{\sigma} \Big\|^2,$$
#
# equals $\tfrac12 \mathbb{E}\|s_\theta(\tilde x) - \nabla \log p_\sigma(\tilde x)\|^2$
# up to a constant: its minimiser is the score of the **noised** data, $p_\sigma$, not of
# $p$.
#
# Write `denoising_score_matching_loss(score_fn, x, key, sigma)`: draw
# `noise = jax.random.normal(key, x.shape)` (use `key` for nothing else), form
# `x_noisy = x + sigma * noise`, and return the mean over the batch of
# $\tfrac12 \|s(\tilde x_i) + \varepsilon_i / \sigma\|^2$ (the squared norm sums over
# the $d$ coordinates).

# %% nbgrader={"grade": false, "grade_id": "denoising_score_matching_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def denoising_score_matching_loss(
    score_fn: ScoreFn, x: Float[Array, "n d"], key: PRNGKeyArray, sigma: float
) -> Float[Array, ""]:
    """Denoising score matching at noise level sigma, averaged over the batch."""
    # Hint: the target score of x_noisy_i is -noise_i / sigma.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'denoising_score_matching_loss' is not done yet: replace this line with your code.")


# %%
check("denoising_score_matching_loss")

# %% [markdown]
# Back to the standard normal and $s_c(x) = -c\,x$. Noised with $\sigma$, the samples
# are $\mathcal{N}(0, (1 + \sigma^2) I)$, whose score is $-x / (1 + \sigma^2)$: the
# denoising loss is smallest at $c = 1/(1 + \sigma^2)$, not at $c = 1$.

# %%
sigma = 0.5
denoising_losses = jax.jit(
    jax.vmap(
        lambda c: denoising_score_matching_loss(
            lambda y: -c * y, normal_samples, jax.random.key(4), sigma
        )
    )
)(scales)

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(scales, denoising_losses)
ax.axvline(1.0, color="k", linestyle=":", label="score of the data, c = 1")
ax.axvline(1 / (1 + sigma**2), color="C1", linestyle="--", label="score of the noised data")
ax.set_xlabel("c in s(x) = -c x")
ax.set_ylabel(f"denoising loss, sigma = {sigma}")
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# ## Learning the score of the swiss roll
#
# Train one network with each loss, from the same initial weights, with the library's
# `training.train(loss_fn, model, data, key=..., num_steps=...)`, which minimises
# `loss_fn(model, batch, key)` over random minibatches with Adam. An `eqx.nn.MLP` handles
# one point, so the model itself is the `score_fn`. Each run takes about 10 to 20
# seconds on a laptop CPU (set `COURSE_QUICK=1` to stop after a few steps).

# %%
sigma = 0.2
loss_functions = {
    "implicit": lambda model, batch, key: implicit_score_matching_loss(model, batch),
    "sliced": sliced_score_matching_loss,
    f"denoising, sigma = {sigma}": lambda model, batch, key: denoising_score_matching_loss(
        model, batch, key, sigma
    ),
}
initial_model = score_network(jax.random.key(5))
models, loss_curves = {}, {}
for name, loss_fn in loss_functions.items():
    models[name], loss_curves[name] = training.train(
        loss_fn, initial_model, roll, key=jax.random.key(6), num_steps=3000, learning_rate=3e-3
    )

# %% [markdown]
# The losses are not comparable with each other (each is the squared error up to its
# own constant, and the denoising one to a different target), but each should fall and
# settle:

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, (name, curve) in zip(axes, loss_curves.items(), strict=True):
    ax.plot(curve)
    ax.set_title(name)
    ax.set_xlabel("step")
fig.tight_layout()

# %% [markdown]
# Now the learned fields. Their lengths range over orders of magnitude, so the top row
# shows only their **directions** (unit arrows) over the data, and the bottom row the
# **length** $\log \|s_\theta(x)\|$: dark curves are where the score vanishes, on the
# ridges of the learned density and in the valleys between them.

# %%
def direction(score_fn: ScoreFn) -> ScoreFn:
    """The field of unit vectors along score_fn."""
    return lambda x: score_fn(x) / jnp.linalg.norm(score_fn(x))


def log_length(score_fn: ScoreFn) -> Callable[[Float[Array, " d"]], Float[Array, ""]]:
    """The logarithm of the length of score_fn."""
    return lambda x: jnp.log(jnp.linalg.norm(score_fn(x)))


lim = 2.2
fig, axes = plt.subplots(2, 3, figsize=(13, 8.5))
for column, (name, model) in enumerate(models.items()):
    plotting.scatter(roll[:3000], ax=axes[0, column], color="C1")
    plotting.plot_vector_field(direction(model), lim=lim, resolution=16, ax=axes[0, column])
    axes[0, column].set_title(f"{name}: direction")
    plotting.plot_log_density(log_length(model), lim=lim, ax=axes[1, column])
    plotting.scatter(roll[:1000], ax=axes[1, column], color="w", s=1)
    axes[1, column].set_title(f"{name}: log length")
fig.tight_layout()

# %% [markdown]
# What to see:
#
# - The implicit and sliced losses learn nearly the same field: the sliced loss is an
#   unbiased estimate of the implicit one, so their gradients agree on average. Where the
#   data is, the field is very sharp: the arrows flip across the thin spiral, its length
#   is large right next to it, and the innermost turn is not even resolved yet. **Away
#   from the data** the loss says nothing, because its expectation is over $p$: the field
#   between the arms is whatever the network happens to extrapolate. Langevin dynamics
#   starts exactly there, far from the data, so these fields are poor guides
#   (Song & Ermon 2019).
# - The denoising field is smooth and points towards the spiral from everywhere around it,
#   but it is the score of the *blurred* roll: it vanishes on a thick spiral, and also on
#   the valleys between the arms.
#
# ## What the noise does
#
# The noised data has the density $p_\sigma(\tilde x) = \frac1N \sum_i
# \mathcal{N}(\tilde x; x_i, \sigma^2 I)$ for the $N$ training points: a Gaussian mixture
# with one component per point. Below, this density for three noise levels, with the
# field learned at $\sigma = 0.2$ drawn on the middle one.

# %%
def noised_density(points: Float[Array, "n d"], noise_level: float):
    """The density of `points` blurred by Gaussian noise: one mixture component per point."""
    mixture = data.GaussianMixture(points, jnp.full(points.shape[0], noise_level))
    return lambda x: jnp.exp(mixture.log_prob(x))


fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
for ax, noise_level in zip(axes, [0.05, sigma, 0.5], strict=True):
    density = noised_density(roll[:4000], noise_level)
    plotting.plot_log_density(density, lim=lim, resolution=150, ax=ax)
    ax.set_title(f"density of the roll noised with sigma = {noise_level}")
plotting.plot_vector_field(
    direction(models[f"denoising, sigma = {sigma}"]), lim=lim, resolution=16, ax=axes[1]
)
fig.tight_layout()

# %% [markdown]
# Small $\sigma$: $p_\sigma$ is close to $p$, but hardly any noised sample lands far
# from the spiral, so there the loss barely constrains the network, as for the implicit
# loss. Large $\sigma$: the noised samples cover the whole plane and the score is smooth
# and well learned everywhere, but it describes a blurred roll. No single noise level
# gives both, so **diffusion models use all of them**: a network $s_\theta(x, t)$
# conditioned on the noise level, trained with the denoising loss at many $\sigma$'s,
# and a sampler that starts with large noise (where the field is smooth and reliable)
# and lowers it step by step until the samples are sharp. That is what the next
# notebooks build: DDPM (notebook 3) and the SDE view (notebook 4).
#
# **Try it.** Retrain the denoising network with `sigma = 0.05` and with `sigma = 0.5`
# and compare the fields. How would the training time of the implicit loss grow for data
# of dimension 100 instead of 2, and that of the sliced one?
