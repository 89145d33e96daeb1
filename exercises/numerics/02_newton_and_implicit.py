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

check = exercise_checks("numerics/02_newton_and_implicit", globals())

# %% [markdown]
# # Numerics 2: Newton's method and implicit differentiation
#
# Many quantities in science are defined *implicitly*, as the solution $x^\star(\theta)$ of
# a system of equations $f(x, \theta) = 0$: equilibria, steady states, the optimum of an
# inner problem. Newton's method finds $x^\star$ by linearising $f$ at the current guess,
#
# $$x_{k+1} = x_k - J(x_k)^{-1} f(x_k, \theta), \qquad J = \frac{\partial f}{\partial x},$$
#
# and converges quadratically near a root (the number of correct digits doubles each
# step). JAX gives the Jacobian with `jax.jacfwd`, and a loop that stops when converged
# with `jax.lax.while_loop`.
#
# How does $x^\star$ change with $\theta$? Differentiating *through* the iterations is
# wasteful (every step stored), inaccurate (it differentiates the algorithm, not the
# solution), and impossible for a `while_loop` in reverse mode. The **implicit function
# theorem** gives the derivative from the solution alone: differentiating
# $f(x^\star(\theta), \theta) = 0$,
#
# $$J\, \frac{\partial x^\star}{\partial \theta} + \frac{\partial f}{\partial \theta} = 0
# \quad\Longrightarrow\quad
# \frac{\partial x^\star}{\partial \theta} = -J^{-1} \frac{\partial f}{\partial \theta}.$$
#
# We check both against [Optimistix](https://docs.kidger.site/optimistix/), which does
# exactly this, and against finite differences.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. `f(x, theta)` returns an array
# shaped like `x` (a vector). Check your work with
# `uv run pytest exercises/numerics/test_02_newton_and_implicit.py` or `uv run grader status`.

# %%
from collections.abc import Callable

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optimistix as optx
from jaxtyping import Array, Float

# `f(x, theta) -> residual`, shaped like x; we look for f(x, theta) = 0.
Residual = Callable[[Float[Array, " n"], Float[Array, "..."]], Float[Array, " n"]]

# %% [markdown]
# ## Exercise 1: Newton's method with `jacfwd` and `while_loop`
#
# Write `newton_solve(f, x0, theta, tol, max_steps)`. Starting from `x0`, take Newton steps
# $\delta = -J(x)^{-1} f(x, \theta)$ (solve the linear system with `jnp.linalg.solve`; never
# invert $J$), and stop as soon as a step is small, $\lVert \delta \rVert \le
# \texttt{tol}\,(1 + \lVert x \rVert)$ (after taking it), or after `max_steps` steps.
#
# `jax.lax.while_loop(cond, body, state)` runs `body` while `cond(state)` is true; the
# state here can be `(x, step_norm, count)`. Start with `step_norm = jnp.inf` so that
# the first step is always taken.

# %% nbgrader={"grade": false, "grade_id": "newton_solve", "locked": false, "schema_version": 3, "solution": true, "task": false}
def newton_solve(
    f: Residual, x0: Float[Array, " n"], theta: Float[Array, "..."], tol: float = 1e-6, max_steps: int = 50
) -> Float[Array, " n"]:
    """A root of x -> f(x, theta) by Newton's method from x0, in a jax.lax.while_loop."""
    # Hint: jacobian = jax.jacfwd(f)(x, theta) differentiates with respect to the first argument.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'newton_solve' is not done yet: replace this line with your code.")


# %%
check("newton_solve")


# %% [markdown]
# A test problem: where the curves $x_1^2 + x_2^2 = \theta_0$ (a circle) and
# $x_2 = \theta_1 \sin(x_1)$ meet. Newton's method and Optimistix find the same point:

# %%
def circle_meets_sine(x, theta):
    return jnp.stack([x[0] ** 2 + x[1] ** 2 - theta[0], x[1] - theta[1] * jnp.sin(x[0])])


theta = jnp.array([2.0, 1.5])
x0 = jnp.array([1.0, 1.0])
root = jax.jit(newton_solve, static_argnums=0)(circle_meets_sine, x0, theta)
optx_root = optx.root_find(circle_meets_sine, optx.Newton(rtol=1e-6, atol=1e-6), x0, args=theta).value
print(root, optx_root, circle_meets_sine(root, theta))

# %% [markdown]
# The quadratic convergence, step by step (a Python loop, to print each error):

# %%
x = x0
for k in range(5):
    x = x - jnp.linalg.solve(jax.jacfwd(circle_meets_sine)(x, theta), circle_meets_sine(x, theta))
    print(k + 1, float(jnp.linalg.norm(x - root)))

# %% [markdown]
# ## Exercise 2: implicit differentiation with `jax.custom_vjp`
#
# Write `implicit_root(f, x0, theta)`: the same root as `newton_solve(f, x0, theta)`, but
# differentiable with respect to `theta` by the implicit function theorem. In reverse mode,
# given the cotangent $\bar x$ of the root, the cotangent of $\theta$ is
#
# $$\bar\theta = \left(\frac{\partial x^\star}{\partial\theta}\right)^{\!\top} \bar x
# = -\left(\frac{\partial f}{\partial \theta}\right)^{\!\top} w, \qquad J^\top w = \bar x,$$
#
# all at $(x^\star, \theta)$: one linear solve with $J^\top$, then a vector-Jacobian product
# of $\theta \mapsto f(x^\star, \theta)$, which `jax.vjp` gives without forming
# $\partial f / \partial \theta$. The root does not depend on `x0` (return zeros for it).
#
# With `jax.custom_vjp`, define a function `root(x0, theta)` and give it a forward rule
# returning `(x_star, residuals)` and a backward rule `(residuals, x_bar) -> (x0_bar, theta_bar)`,
# then `root.defvjp(forward, backward)`. Define them inside `implicit_root`, where `f` is
# known, and return `root(x0, theta)`.

# %% nbgrader={"grade": false, "grade_id": "implicit_root", "locked": false, "schema_version": 3, "solution": true, "task": false}
def implicit_root(f: Residual, x0: Float[Array, " n"], theta: Float[Array, "..."]) -> Float[Array, " n"]:
    """newton_solve(f, x0, theta), with its derivative in theta from the implicit function theorem."""
    # Hint: in the backward rule, w = jnp.linalg.solve(jacobian.T, x_bar); _, pullback = jax.vjp(lambda th: f(x_star, th), theta)
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'implicit_root' is not done yet: replace this line with your code.")


# %%
check("implicit_root")

# %% [markdown]
# The derivative of the intersection point with respect to the radius and the amplitude,
# three ways:

# %%
ours = jax.jit(jax.jacrev(implicit_root, argnums=2), static_argnums=0)(circle_meets_sine, x0, theta)
optimistix = jax.jit(jax.jacrev(lambda th: optx.root_find(circle_meets_sine, optx.Newton(rtol=1e-6, atol=1e-6), x0, args=th).value))(theta)
h, solve = 1e-2, jax.jit(lambda th: newton_solve(circle_meets_sine, x0, th))
finite_differences = jnp.stack([(solve(theta + h * e) - solve(theta - h * e)) / (2 * h) for e in jnp.eye(2)], axis=1)
print("implicit:\n", ours, "\noptimistix:\n", optimistix, "\nfinite differences:\n", finite_differences)

# %% [markdown]
# The intersection moves as the circle grows; the tangent given by the derivative
# matches the path:

# %%
radii = jnp.linspace(1.0, 3.0, 30)
path = jax.jit(jax.vmap(lambda r: implicit_root(circle_meets_sine, x0, jnp.array([r, 1.5]))))(radii)
tangent = ours[:, 0]
plt.plot(path[:, 0], path[:, 1], ".-", label="intersection as theta_0 grows")
plt.quiver(root[0], root[1], tangent[0], tangent[1], color="C3", angles="xy", label="d x* / d theta_0")
plt.legend()
plt.axis("equal");
