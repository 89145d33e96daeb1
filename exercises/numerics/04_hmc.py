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

check = exercise_checks("numerics/04_hmc", globals())

# %% [markdown]
# # Numerics 4: Hamiltonian Monte Carlo
#
# To sample a density $\pi(q)$ known up to a constant (a Bayesian posterior, say),
# Hamiltonian Monte Carlo (HMC) treats $q$ as the position of a particle in the potential
# $U(q) = -\log \pi(q)$, gives it a random momentum $p \sim \mathcal{N}(0, I)$, and lets it
# move for a while under the Hamiltonian
#
# $$H(q, p) = U(q) + \tfrac12\, p^\top p .$$
#
# Exact Hamiltonian dynamics keeps $H$ constant and preserves volume, so it would leave
# the joint density $\propto e^{-H}$ invariant, and the particle travels far in one move
# (unlike a random walk). A numerical integrator only keeps $H$ approximately; a
# Metropolis **accept/reject** step corrects for its error exactly, provided the integrator
# is *reversible* and *volume-preserving*. The **leapfrog** method is both, and its energy
# error is $O(\varepsilon^2)$ in the step size $\varepsilon$.
#
# We write the leapfrog integrator, one HMC transition and a sampler, test the properties
# above, and compare with the No-U-Turn sampler of [BlackJAX](https://blackjax-devs.github.io/blackjax/).
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Positions are vectors of shape
# `(d,)`; use `jax.vmap` for several chains. Use each PRNG key once. Check your work with
# `uv run pytest exercises/numerics/test_04_hmc.py` or `uv run grader status`.

# %%
from collections.abc import Callable

import blackjax
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

# %% [markdown]
# The target in this notebook: a correlated Gaussian, whose mean and covariance we know.

# %%
TARGET_MEAN = jnp.array([1.0, -1.0])
TARGET_COV = jnp.array([[1.0, 0.8], [0.8, 1.0]])


def gaussian_log_prob(q):
    centred = q - TARGET_MEAN
    return -0.5 * centred @ jnp.linalg.solve(TARGET_COV, centred)


# %% [markdown]
# ## Exercise 1: the leapfrog integrator
#
# Hamilton's equations are $\dot q = p$, $\dot p = -\nabla U(q) = \nabla \log \pi(q)$. One
# leapfrog step of size $\varepsilon$ is a half *kick*, a full *drift* and a half kick:
#
# $$p \leftarrow p + \tfrac{\varepsilon}{2} \nabla \log\pi(q), \qquad
# q \leftarrow q + \varepsilon\, p, \qquad
# p \leftarrow p + \tfrac{\varepsilon}{2} \nabla \log\pi(q).$$
#
# Write `leapfrog(grad_log_prob, q, p, step_size, num_steps)` returning `(q, p)` after
# `num_steps` steps, with `jax.lax.scan` (or `jax.lax.fori_loop`).

# %% nbgrader={"grade": false, "grade_id": "leapfrog", "locked": false, "schema_version": 3, "solution": true, "task": false}
def leapfrog(
    grad_log_prob: Callable[[Float[Array, " d"]], Float[Array, " d"]],
    q: Float[Array, " d"],
    p: Float[Array, " d"],
    step_size: float,
    num_steps: int,
) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
    """`num_steps` leapfrog steps (half kick, drift, half kick) of size `step_size` from (q, p)."""
    # Hint: the carry of the scan is (q, p); scan over jnp.arange(num_steps) or pass length=num_steps.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'leapfrog' is not done yet: replace this line with your code.")


# %%
check("leapfrog")


# %% [markdown]
# Leapfrog is **reversible**: flip the momentum at the end, integrate again, and you are
# back where you started (with the momentum flipped). Its energy error over a fixed
# trajectory length shrinks like $\varepsilon^2$:

# %%
def hamiltonian(q, p):
    return -gaussian_log_prob(q) + 0.5 * p @ p


q0, p0 = jnp.array([2.0, 0.5]), jnp.array([-0.3, 1.2])
grad_log_prob = jax.grad(gaussian_log_prob)
q1, p1 = leapfrog(grad_log_prob, q0, p0, 0.1, 20)
q2, p2 = leapfrog(grad_log_prob, q1, -p1, 0.1, 20)
print("back to the start:", q2, -p2, "vs", q0, p0)

step_sizes = np.array([0.2, 0.1, 0.05, 0.025])
energy_errors = [abs(float(hamiltonian(*leapfrog(grad_log_prob, q0, p0, eps, int(round(2.0 / eps)))) - hamiltonian(q0, p0)))
                 for eps in step_sizes]
slope = np.polyfit(np.log(step_sizes), np.log(energy_errors), 1)[0]
print(f"energy error ~ step_size^{slope:.2f}")
plt.loglog(step_sizes, energy_errors, "o-", label=f"|H(end) - H(start)|, slope {slope:.2f}")
plt.xlabel("step size")
plt.legend();

# %% [markdown]
# ## Exercise 2: one HMC transition
#
# Write `hmc_step(key, q, log_prob, step_size, num_steps)` returning `(q_next, accept_prob)`:
#
# 1. split the key: `momentum_key, accept_key = jax.random.split(key)`;
# 2. draw $p \sim \mathcal{N}(0, I)$ shaped like `q` with `momentum_key`;
# 3. propose $(q', p')$ = `leapfrog` of $(q, p)$ with the gradient of `log_prob`;
# 4. `accept_prob` $= \min\!\big(1, \exp(H(q, p) - H(q', p'))\big)$;
# 5. accept when `jax.random.uniform(accept_key) < accept_prob`: `q_next` is $q'$ if
#    accepted, else $q$ (use `jnp.where`, not Python `if`).
#
# (Flipping the momentum, $p' \to -p'$, which makes the proposal an involution, changes
# nothing here since $p$ is redrawn at every transition.)

# %% nbgrader={"grade": false, "grade_id": "hmc_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hmc_step(
    key: PRNGKeyArray,
    q: Float[Array, " d"],
    log_prob: Callable[[Float[Array, " d"]], Float[Array, ""]],
    step_size: float,
    num_steps: int,
) -> tuple[Float[Array, " d"], Float[Array, ""]]:
    """One HMC transition from q: a leapfrog proposal with fresh momentum, then accept or reject."""
    # Hint: H(q, p) = -log_prob(q) + 0.5 * p @ p; jnp.exp of a difference, never of each H alone.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'hmc_step' is not done yet: replace this line with your code.")


# %%
check("hmc_step")


# %% [markdown]
# ## Exercise 3: the sampler
#
# Write `hmc_sample(key, q0, log_prob, step_size, num_steps, num_samples)` that runs
# `num_samples` transitions from `q0` with `jax.lax.scan`. Split the key with
# `jax.random.split(key, num_samples)`; transition $i$ uses key $i$. Return the positions
# *after* each transition, shape `(num_samples, d)`, and their acceptance probabilities,
# shape `(num_samples,)`.

# %% nbgrader={"grade": false, "grade_id": "hmc_sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hmc_sample(
    key: PRNGKeyArray,
    q0: Float[Array, " d"],
    log_prob: Callable[[Float[Array, " d"]], Float[Array, ""]],
    step_size: float,
    num_steps: int,
    num_samples: int,
) -> tuple[Float[Array, "num_samples d"], Float[Array, " num_samples"]]:
    """A chain of `num_samples` HMC transitions from q0: the positions and acceptance probabilities."""
    # Hint: the carry is the position; each step returns (q, (q, accept_prob)).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'hmc_sample' is not done yet: replace this line with your code.")


# %%
check("hmc_sample")

# %% [markdown]
# ## Sampling the Gaussian, and BlackJAX's NUTS on the same target
#
# 16 chains of 500 transitions each, started far from the mode; the first 100 of each
# chain are discarded as warm-up. The standard error of an estimate is computed from the
# spread of the chains' own estimates (the chains are independent), so it accounts for the
# correlation between successive samples. NUTS (the No-U-Turn sampler) chooses the length
# of each trajectory itself; we run one long chain and cut it into 16 batches, whose
# estimates are nearly independent when the batches are much longer than the chain's
# memory. With the same step size, both should agree within the errors.

# %%
NUM_CHAINS, NUM_SAMPLES, WARMUP = 16, 500, 100
starts = jnp.tile(jnp.array([4.0, 4.0]), (NUM_CHAINS, 1))
chain_keys = jax.random.split(jax.random.key(0), NUM_CHAINS)
run_chains = jax.jit(jax.vmap(lambda k, q0: hmc_sample(k, q0, gaussian_log_prob, 0.3, 6, NUM_SAMPLES)))
hmc_samples, accept_probs = run_chains(chain_keys, starts)
hmc_samples = hmc_samples[:, WARMUP:]


@jax.jit
def nuts_chain(key, start):
    nuts = blackjax.nuts(gaussian_log_prob, step_size=0.3, inverse_mass_matrix=jnp.ones(2))

    def transition(state, step_key):
        state, _ = nuts.step(step_key, state)
        return state, state.position

    return jax.lax.scan(transition, nuts.init(start), jax.random.split(key, NUM_CHAINS * NUM_SAMPLES))[1]


# One long NUTS chain cut into NUM_CHAINS batches ("batch means"): cheaper to compile than 16 chains.
nuts_samples = nuts_chain(jax.random.key(1), starts[0]).reshape(NUM_CHAINS, NUM_SAMPLES, 2)[:, WARMUP:]


def mean_and_standard_error(chains):
    chain_means = chains.mean(axis=1)
    return chain_means.mean(axis=0), chain_means.std(axis=0, ddof=1) / np.sqrt(chains.shape[0])


print("mean acceptance probability:", float(accept_probs[:, WARMUP:].mean()))
for name, chains in [("HMC", hmc_samples), ("NUTS", nuts_samples)]:
    mean, error = mean_and_standard_error(chains)
    print(f"{name:5s} mean {np.round(mean, 3)} +- {np.round(error, 3)}   (exact {TARGET_MEAN})")

fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
for ax, (name, chains) in zip(axes, [("HMC", hmc_samples), ("NUTS", nuts_samples)], strict=True):
    ax.plot(*chains.reshape(-1, 2).T, ".", alpha=0.1)
    ax.set_title(f"{name}: {chains.shape[0] * chains.shape[1]} samples")
    ax.set_aspect("equal")
axes[0].plot(*hmc_samples[0, :30].T, "k.-", lw=0.8, label="one chain, 30 transitions")
axes[0].legend();
