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

check = exercise_checks("numerics/01_integrators", globals())

# %% [markdown]
# # Numerics 1: ODE integrators with `lax.scan`
#
# An ordinary differential equation $\dot y = f(t, y, \theta)$ with $y(t_0) = y_0$ is
# solved numerically by taking steps of size $\Delta t$. A method has **order** $p$ when
# its error at a fixed final time shrinks like $\Delta t^{\,p}$: halve the step, and the
# error of a fourth-order method drops 16-fold. We write two methods, a loop that runs
# them, and check all of it the way numerical libraries do:
#
# - the **observed order**, from a regression of $\log(\text{error})$ on $\log \Delta t$;
# - agreement with a well-tested library, [Diffrax](https://docs.kidger.site/diffrax/);
# - gradients *through* the solver, with respect to the parameters $\theta$: the integrator
#   is ordinary JAX code, so `jax.grad` differentiates it like any other function.
#
# Vector fields follow Diffrax's convention, `f(t, y, args)`, with `y` an array of any shape.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Check your work with
# `uv run pytest exercises/numerics/test_01_integrators.py` or `uv run grader status`.

# %%
from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float

# `f(t, y, args) -> dy/dt`, like the vector field of a `diffrax.ODETerm`.
VectorField = Callable[[Float[Array, ""], Float[Array, "..."], object], Float[Array, "..."]]

# %% [markdown]
# ## Exercise 1: Euler's method
#
# The simplest step follows the tangent: $y_{n+1} = y_n + \Delta t\, f(t_n, y_n, \theta)$.
# Write `euler_step(f, t, y, dt, args)`.

# %% nbgrader={"grade": false, "grade_id": "euler_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def euler_step(f: VectorField, t: Float[Array, ""], y: Float[Array, "..."], dt: Float[Array, ""], args) -> Float[Array, "..."]:
    """One step of the explicit Euler method from (t, y) to t + dt."""
    # Hint: one evaluation of f.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'euler_step' is not done yet: replace this line with your code.")


# %%
check("euler_step")


# %% [markdown]
# ## Exercise 2: the classical Runge–Kutta method (RK4)
#
# Four evaluations of $f$ per step, combined so that the errors cancel up to fourth order:
#
# $$\begin{aligned}
# k_1 &= f(t, y), & k_2 &= f\!\left(t + \tfrac{\Delta t}{2},\, y + \tfrac{\Delta t}{2} k_1\right),\\
# k_3 &= f\!\left(t + \tfrac{\Delta t}{2},\, y + \tfrac{\Delta t}{2} k_2\right), & k_4 &= f(t + \Delta t,\, y + \Delta t\, k_3),
# \end{aligned}$$
#
# $$y_{n+1} = y + \tfrac{\Delta t}{6}\,(k_1 + 2 k_2 + 2 k_3 + k_4)$$
#
# (each $f$ also takes `args`). Write `rk4_step(f, t, y, dt, args)`.

# %% nbgrader={"grade": false, "grade_id": "rk4_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rk4_step(f: VectorField, t: Float[Array, ""], y: Float[Array, "..."], dt: Float[Array, ""], args) -> Float[Array, "..."]:
    """One step of the classical fourth-order Runge-Kutta method from (t, y) to t + dt."""
    # Hint: four calls of f, then a weighted mean of the slopes.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'rk4_step' is not done yet: replace this line with your code.")


# %%
check("rk4_step")


# %% [markdown]
# ## Exercise 3: the solve, one `lax.scan`
#
# Write `solve_fixed_step(step, f, y0, t0, t1, num_steps, args)`: `num_steps` steps of size
# $\Delta t = (t_1 - t_0) / \texttt{num\_steps}$ with the method `step` (`euler_step` or
# `rk4_step`), step $k$ starting at time $t_0 + k\,\Delta t$. Return the whole trajectory
# $y_0, y_1, \dots, y_{\texttt{num\_steps}}$, shape `(num_steps + 1, *y0.shape)`.
#
# Use `jax.lax.scan` over the step index, so that the program holds *one* step whatever
# the number of steps (a Python loop under `jit` would copy the step `num_steps` times).
# Compute each step's time from its index rather than by adding up $\Delta t$s (which
# accumulates rounding errors). `num_steps` is a Python `int`.

# %% nbgrader={"grade": false, "grade_id": "solve_fixed_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def solve_fixed_step(
    step: Callable, f: VectorField, y0: Float[Array, "..."], t0: float, t1: float, num_steps: int, args=None
) -> Float[Array, "num_steps_plus_1 ..."]:
    """The states at t0, t0 + dt, ..., t1 of num_steps fixed steps of `step`."""
    # Hint: jax.lax.scan(body, y0, jnp.arange(num_steps)); then prepend y0 with jnp.concatenate.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'solve_fixed_step' is not done yet: replace this line with your code.")


# %%
check("solve_fixed_step")


# %% [markdown]
# ## The observed order
#
# A problem with a known solution: $\dot y = \theta \cos(t)\, y$, so
# $y(t) = y_0\, e^{\theta \sin t}$. The errors at $t_1 = 3$ for halving steps lie on lines of
# slope $p$ in a log-log plot. In single precision, the errors of RK4 hit the floor of
# rounding errors ($\sim 10^{-7}$) quickly, so we compute in double precision here:
# `jax.enable_x64` switches it on for a block of code.

# %%
def growth(t, y, theta):
    return theta * jnp.cos(t) * y


def observed_order(step, steps=(8, 16, 32, 64, 128)):
    with jax.enable_x64(True):
        y0, exact = jnp.array([1.0]), np.exp(0.7 * np.sin(3.0))
        errors = [abs(float(solve_fixed_step(step, growth, y0, 0.0, 3.0, n, 0.7)[-1, 0]) - exact) for n in steps]
    dts = 3.0 / np.array(steps)
    return np.polyfit(np.log(dts), np.log(errors), 1)[0], dts, errors


for name, step in [("Euler", euler_step), ("RK4", rk4_step)]:
    order, dts, errors = observed_order(step)
    print(f"{name}: observed order {order:.2f}")
    plt.loglog(dts, errors, "o-", label=f"{name}: observed order {order:.2f}")
plt.xlabel("dt")
plt.ylabel("error at t = 3")
plt.legend();

# %% [markdown]
# ## Against Diffrax, and gradients through the solve
#
# The Lotka–Volterra equations (prey $u$, predators $v$):
# $\dot u = \alpha u - \beta u v$, $\dot v = -\gamma v + \delta u v$. Diffrax's adaptive
# `Tsit5` with tight tolerances gives a reference; RK4 with 400 fixed steps agrees closely.

# %%
def lotka_volterra(t, y, params):
    alpha, beta, gamma, delta = params
    prey, predators = y
    return jnp.stack([alpha * prey - beta * prey * predators, -gamma * predators + delta * prey * predators])


params = jnp.array([1.0, 0.5, 1.5, 0.5])
y0, t1 = jnp.array([2.0, 1.0]), 10.0
ours = solve_fixed_step(rk4_step, lotka_volterra, y0, 0.0, t1, 400, params)
reference = diffrax.diffeqsolve(
    diffrax.ODETerm(lotka_volterra), diffrax.Tsit5(), t0=0.0, t1=t1, dt0=0.01, y0=y0, args=params,
    saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, t1, 401)),
    stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-7),
)
print("largest difference from Diffrax:", float(jnp.max(jnp.abs(ours - reference.ys))))
times = jnp.linspace(0.0, t1, 401)
plt.plot(times, ours[:, 0], label="prey (RK4)")
plt.plot(times, ours[:, 1], label="predators (RK4)")
plt.plot(times[::20], reference.ys[::20, 0], "k.", label="Diffrax Tsit5")
plt.plot(times[::20], reference.ys[::20, 1], "k.")
plt.xlabel("t")
plt.legend();

# %% [markdown]
# The final prey population as a function of the parameters is differentiable through the
# 400 RK4 steps (reverse mode stores the states of the scan). Central finite differences,
# in double precision, agree:

# %%
final_prey = lambda p: solve_fixed_step(rk4_step, lotka_volterra, y0.astype(p.dtype), 0.0, t1, 400, p)[-1, 0]
print("jax.grad:          ", jax.jit(jax.grad(final_prey))(params))
with jax.enable_x64(True):
    final_prey_64 = jax.jit(lambda p: final_prey(p.astype(jnp.float64)))
    h, params_64 = 1e-6, np.asarray(params, np.float64)
    differences = [(final_prey_64(params_64 + h * e) - final_prey_64(params_64 - h * e)) / (2 * h) for e in np.eye(4)]
    print("finite differences:", np.array(differences))
