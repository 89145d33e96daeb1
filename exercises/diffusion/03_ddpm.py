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

check = exercise_checks("diffusion/03_ddpm", globals())

# %% [markdown]
# # Diffusion 3: denoising diffusion probabilistic models (DDPM)
#
# Ho et al. (2020) turn score-based sampling into a recipe that trains reliably:
#
# 1. **Forward process.** Destroy the data in $T$ small Gaussian steps,
#    $q(x_t \mid x_{t-1}) = \mathcal{N}(\sqrt{1-\beta_t}\,x_{t-1}, \beta_t I)$, until
#    $x_{T-1}$ is pure noise.
# 2. **Training.** Teach a network $\epsilon_\theta(x_t, t)$ to recognise the noise that
#    was added.
# 3. **Reverse process.** Start from noise and remove it step by step.
#
# The noise schedule $\beta_0, \dots, \beta_{T-1}$ comes from the library:
# `course.schedules.DDPMSchedule` holds `betas`, `alphas` ($= 1 - \beta$) and
# `alpha_bars` ($\bar\alpha_t = \prod_{s \le t} \alpha_s$), indexed by the step
# $t = 0, \dots, T-1$.
#
# **Rules.** Functions handle *one* point of shape `(d,)` unless stated otherwise; use
# `jax.vmap` for batches. Use each PRNG key once. Check your work with
# `uv run pytest exercises/diffusion/test_03_ddpm.py` or `uv run grader status`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from IPython.display import HTML
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import data, metrics, plotting, training
from course.nn import TimeMLP
from course.schedules import DDPMSchedule

# %%
schedule = DDPMSchedule.linear(num_steps=1000)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(schedule.alpha_bars, label=r"$\bar\alpha_t$ (signal variance left)")
ax.plot(schedule.betas / schedule.betas.max(), label=r"$\beta_t$ (scaled)")
ax.set_xlabel("step t")
ax.legend()

# %% [markdown]
# ## Exercise 1: forward noising in closed form
#
# Composing the Gaussian steps gives $x_t$ directly from $x_0$:
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon,
# \qquad \epsilon \sim \mathcal{N}(0, I).$$
#
# Write `forward_noise(schedule, x0, t, noise)` for one point `x0` and one integer step
# `t`; the noise $\epsilon$ is given (so the function is deterministic).

# %% nbgrader={"grade": false, "grade_id": "forward_noise", "locked": false, "schema_version": 3, "solution": true, "task": false}
def forward_noise(
    schedule: DDPMSchedule, x0: Float[Array, " d"], t: Int[Array, ""], noise: Float[Array, " d"]
) -> Float[Array, " d"]:
    """Sample x_t given x_0 and the noise epsilon, in one shot."""
    # Hint: schedule.alpha_bars[t]
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'forward_noise' is not done yet: replace this line with your code.")


# %%
check("forward_noise")

# %% [markdown]
# Watch the swiss roll dissolve into a Gaussian:

# %%
x0 = data.swiss_roll(jax.random.key(0), 2000)
noise = jax.random.normal(jax.random.key(1), x0.shape)
noise_batch = jax.jit(jax.vmap(forward_noise, in_axes=(None, 0, None, 0)))
fig, axes = plt.subplots(1, 5, figsize=(15, 3))
for ax, t in zip(axes, [0, 50, 150, 400, 999], strict=True):
    plotting.scatter(noise_batch(schedule, x0, t, noise), ax=ax, title=f"t = {t}", lim=3.5)

# %% [markdown]
# ## Exercise 2: the training loss
#
# The simplified DDPM objective draws a step and some noise per example and regresses
# the noise:
#
# $$L(\theta) = \mathbb{E}_{x_0, t, \epsilon}\,
# \big\| \epsilon - \epsilon_\theta(x_t, t) \big\|^2 .$$
#
# Write `ddpm_loss(model, schedule, x0, key)` for a **batch** `x0` of shape `(n, d)`.
# Split the key as `t_key, noise_key = jax.random.split(key)`; draw the steps with
# `jax.random.randint(t_key, (n,), 0, T)` and the noise with
# `jax.random.normal(noise_key, x0.shape)`. The model handles one example,
# `model(x_t, t)`. Return the mean of the squared error over the batch *and* the
# dimensions (`jnp.mean`).

# %% nbgrader={"grade": false, "grade_id": "ddpm_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddpm_loss(
    model, schedule: DDPMSchedule, x0: Float[Array, "n d"], key: PRNGKeyArray
) -> Float[Array, ""]:
    """The epsilon-prediction loss on a batch."""
    # Hint: jax.vmap(forward_noise, in_axes=(None, 0, 0, 0)) noises the whole batch.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'ddpm_loss' is not done yet: replace this line with your code.")


# %%
check("ddpm_loss")

# %% [markdown]
# Train a small time-conditioned MLP on the swiss roll (about half a minute on a laptop;
# `COURSE_QUICK=1` shortens it to a few steps).

# %%
model = TimeMLP(2, hidden_dim=128, depth=3, max_time=schedule.num_steps, key=jax.random.key(2))
dataset = data.swiss_roll(jax.random.key(3), 50_000)
loss_fn = lambda model, batch, key: ddpm_loss(model, schedule, batch, key)
model, losses = training.train(
    loss_fn, model, dataset, key=jax.random.key(4), num_steps=8000, batch_size=512, learning_rate=2e-3
)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses, lw=0.5)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("loss")

# %% [markdown]
# ## Exercise 3: the reverse step
#
# The reverse (ancestral) step of Ho et al. (Algorithm 2) removes the predicted noise and
# adds a little fresh noise, except at the last step:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,
# \epsilon_\theta(x_t, t)\Big) + \sigma_t z, \qquad \sigma_t = \sqrt{\beta_t},\;
# z \sim \mathcal{N}(0, I),$$
#
# with no noise ($\sigma_t z = 0$) when $t = 0$. Write
# `reverse_step(model, schedule, x_t, t, key)` for one point; draw $z$ with
# `jax.random.normal(key, x_t.shape)`. It must work under `jax.jit` with a traced `t`,
# so use `jnp.where` rather than a Python `if` for the last step.

# %% nbgrader={"grade": false, "grade_id": "reverse_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def reverse_step(
    model, schedule: DDPMSchedule, x_t: Float[Array, " d"], t: Int[Array, ""], key: PRNGKeyArray
) -> Float[Array, " d"]:
    """One ancestral sampling step from x_t to x_{t-1}."""
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'reverse_step' is not done yet: replace this line with your code.")


# %%
check("reverse_step")


# %% [markdown]
# ## Exercise 4: the sampling loop
#
# Write `ddpm_sample(model, schedule, x_T, key)`: start from a batch `x_T` of shape
# `(n, d)` and apply `reverse_step` for $t = T-1, T-2, \dots, 0$. Split the key into one
# key per step, `step_keys = jax.random.split(key, T)`; the step at time `t` uses
# `jax.random.split(step_keys[t], n)`, one key per point. Return the whole trajectory,
# shape `(T + 1, n, d)`: `x_T` first, the samples last. Use `jax.lax.scan`, and pass the
# keys to it as scanned-over inputs (JAX's key-reuse checker rejects a scan body that
# indexes a captured key array, since the body runs many times).

# %% nbgrader={"grade": false, "grade_id": "ddpm_sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddpm_sample(
    model, schedule: DDPMSchedule, x_T: Float[Array, "n d"], key: PRNGKeyArray
) -> Float[Array, "steps n d"]:
    """Run the reverse process from x_T; return all intermediate batches."""
    # Hint: scan over the pairs (t, step_keys[t]) for t = T-1, ..., 0:
    # ts = jnp.arange(T)[::-1]; jax.lax.scan(step, x_T, (ts, step_keys[ts]))
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'ddpm_sample' is not done yet: replace this line with your code.")


# %%
check("ddpm_sample")

# %% [markdown]
# ## Sampling
#
# Draw 2,000 samples and compare them with fresh data. The sliced Wasserstein distance
# (`course.metrics`) is near zero for identical distributions; two independent data
# samples of the same size set the floor that a perfect model would reach.

# %%
init_key, sample_key, data_key, eval_key = jax.random.split(jax.random.key(5), 4)
x_T = jax.random.normal(init_key, (2000, 2))
trajectory = eqx.filter_jit(ddpm_sample)(model, schedule, x_T, sample_key)
samples = trajectory[-1]

fresh, other = jnp.split(data.swiss_roll(data_key, 4000), 2)
distance = metrics.sliced_wasserstein(samples, fresh, eval_key)
floor = metrics.sliced_wasserstein(other, fresh, eval_key)
print(f"sliced Wasserstein to fresh data: {distance:.4f} (data-vs-data floor {floor:.4f})")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
plotting.scatter(samples, ax=axes[0], title="DDPM samples")
plotting.scatter(fresh, ax=axes[1], title="data")

# %% [markdown]
# The reverse process, as an animation (`course.plotting.save_gif` writes it as a GIF):

# %%
animation = plotting.animate_trajectory(trajectory, lim=3.5, max_frames=40)
HTML(animation.to_jshtml())
