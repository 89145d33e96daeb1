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

check = exercise_checks("diffusion/01_langevin", globals())

# %% [markdown]
# # Diffusion 1: Langevin dynamics
#
# A generative model has to produce new samples from a distribution $p(x)$. If we
# know the **score** $\nabla_x \log p(x)$, which points towards higher density,
# *Langevin dynamics* turns it into a sampler (Welling & Teh 2011; Song & Ermon 2019):
#
# $$x_{k+1} = x_k + \epsilon\, \nabla_x \log p(x_k) + \sqrt{2\epsilon}\, z_k,
# \qquad z_k \sim \mathcal{N}(0, I).$$
#
# For a small step $\epsilon$ and many steps, $x_k$ is distributed as $p$ whatever
# $x_0$ was. Every diffusion model in this course is a refinement of this idea: learn
# the score from data, then follow it with noise.
#
# In this notebook the density is known exactly (a Gaussian mixture), so we can
# compute its score with `jax.grad`.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Functions handle *one* point
# of shape `(2,)` unless stated otherwise; use `jax.vmap` for batches. Use each PRNG
# key once (split it first). Check your work with
# `uv run pytest exercises/diffusion/test_01_langevin.py` or `uv run grader status`.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from jaxtyping import Array, Float, PRNGKeyArray

from course import data, plotting

# %% [markdown]
# The target: a mixture of Gaussians in 2D with an exact log-density.

# %%
mixture = data.gaussian_mixture_2d()
ax = plotting.plot_log_density(mixture.log_prob, lim=4.0)
ax.set_title("log p(x) of the target mixture");

# %% [markdown]
# ## Exercise 1: the score by automatic differentiation
#
# Write `mixture_score(mixture, x)` that returns $\nabla_x \log p(x)$ for one point
# `x` of shape `(2,)`, using `mixture.log_prob` and `jax.grad`.

# %% nbgrader={"grade": false, "grade_id": "mixture_score", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mixture_score(mixture: data.GaussianMixture, x: Float[Array, "2"]) -> Float[Array, "2"]:
    """The score of the mixture, grad_x log p(x), at one point."""
    # Hint: jax.grad(f) is a function; call it on x.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'mixture_score' is not done yet: replace this line with your code.")


# %%
check("mixture_score")

# %% [markdown]
# The score field points towards the modes and vanishes at them:

# %%
ax = plotting.plot_log_density(mixture.log_prob, lim=4.0)
plotting.plot_vector_field(lambda x: mixture_score(mixture, x), lim=4.0, ax=ax)
ax.set_title("score of the mixture");

# %% [markdown]
# ## Exercise 2: one Langevin step
#
# Write `langevin_step(score_fn, x, key, step_size)` for one point: draw
# $z \sim \mathcal{N}(0, I)$ of the same shape as `x` with `key` (use it exactly
# once), and return $x + \epsilon\, s(x) + \sqrt{2\epsilon}\, z$.

# %% nbgrader={"grade": false, "grade_id": "langevin_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def langevin_step(
    score_fn, x: Float[Array, "2"], key: PRNGKeyArray, step_size: float
) -> Float[Array, "2"]:
    """One step of unadjusted Langevin dynamics from `x`."""
    # Hint: jax.random.normal(key, x.shape)
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'langevin_step' is not done yet: replace this line with your code.")


# %%
check("langevin_step")


# %% [markdown]
# ## Exercise 3: a sampler with `lax.scan`
#
# A Python loop over thousands of steps is slow, and `jax.jit` would unroll it.
# `jax.lax.scan(f, carry, xs)` runs `f(carry, x) -> (carry, y)` over the leading axis of
# `xs` in one compiled loop and stacks the `y`s.
#
# Write `langevin_sampler(score_fn, x0, key, step_size, num_steps)`. Split `key` into
# `num_steps` keys with `jax.random.split(key, num_steps)`; step `k` uses key `k`.
# Return the whole trajectory **after** each step, shape `(num_steps, 2)` (so its last
# row is the final sample).

# %% nbgrader={"grade": false, "grade_id": "langevin_sampler", "locked": false, "schema_version": 3, "solution": true, "task": false}
def langevin_sampler(
    score_fn, x0: Float[Array, "2"], key: PRNGKeyArray, step_size: float, num_steps: int
) -> Float[Array, "num_steps 2"]:
    """Run `num_steps` Langevin steps from `x0`; return the point after each step."""
    # Hint: the carry is the current point; the scanned-over inputs are the keys.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'langevin_sampler' is not done yet: replace this line with your code.")


# %%
check("langevin_sampler")

# %% [markdown]
# ## Sampling the mixture
#
# Start 2,000 particles from a broad uniform distribution and run them all at once:
# `jax.vmap` over the starting points and keys, `jax.jit` around the whole thing.
# `num_steps` is static: it decides the length of the loop.

# %%
score_fn = lambda x: mixture_score(mixture, x)


@jax.jit
def sample_many(keys, starts):
    run = lambda x0, k: langevin_sampler(score_fn, x0, k, 0.01, 500)
    return jax.vmap(run)(starts, keys)


start_key, run_key = jax.random.split(jax.random.key(0))
starts = jax.random.uniform(start_key, (2000, 2), minval=-4.0, maxval=4.0)
trajectories = sample_many(jax.random.split(run_key, 2000), starts)  # (particles, steps, 2)

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
plotting.scatter(starts, ax=axes[0], title="start", lim=4.0)
plotting.scatter(trajectories[:, 50], ax=axes[1], title="after 50 steps", lim=4.0)
plotting.scatter(trajectories[:, -1], ax=axes[2], title="after 500 steps", lim=4.0)

# %% [markdown]
# The particles end in the modes, but look at the *weights*: Langevin dynamics with a
# finite number of steps mixes slowly between well-separated modes, so the fraction of
# particles per mode depends on where they started. This is why score-based diffusion
# models add noise at several scales (next notebooks): with large noise the modes merge
# and the particles find them in the right proportions.
#
# Compare with exact samples from the mixture:

# %%
exact = mixture.sample(jax.random.key(1), 2000)
plotting.scatter(exact, title="exact samples", lim=4.0);
