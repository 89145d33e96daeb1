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

check = exercise_checks("numerics/03_linear_solves", globals())

# %% [markdown]
# # Numerics 3: matrix-free linear algebra
#
# A matrix of a million unknowns squared does not fit in memory, yet many large systems
# $A x = b$ are solved every day: $A$ is never stored, only its action $v \mapsto A v$ is
# computed (a stencil, a convolution, a Jacobian- or Hessian-vector product). Methods that
# need nothing else are **matrix-free**. Two classics:
#
# - the **conjugate gradient** method (CG) solves $A x = b$ for a symmetric positive
#   definite $A$ with one product $A p$ per iteration;
# - the **Hessian-vector product** $H v = \nabla^2 f(x)\, v$ costs about as much as a
#   gradient, by composing forward and reverse mode, while the Hessian costs $n$ gradients
#   and $n^2$ memory.
#
# Together they make Newton–CG, the workhorse of large-scale optimisation. We check CG
# against [Lineax](https://docs.kidger.site/lineax/).
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Never form a matrix from the
# function you are given. Check your work with
# `uv run pytest exercises/numerics/test_03_linear_solves.py` or `uv run grader status`.

# %%
from collections.abc import Callable

import jax
import jax.numpy as jnp
import lineax as lx
import matplotlib.pyplot as plt
from jaxtyping import Array, Float

# %% [markdown]
# A matrix-free operator to solve with: the 1-D Poisson problem $-u'' + c\,u = b$ on $n$
# grid points with $u = 0$ at both ends. Its matrix is tridiagonal (diagonal $2/h^2 + c$,
# off-diagonals $-1/h^2$), but all we need is the stencil:

# %%
def poisson_matvec(u: Float[Array, " n"], shift: float = 1.0) -> Float[Array, " n"]:
    """(-d^2/dx^2 + shift) u on a uniform grid of spacing 1 / (n + 1), zero at the ends."""
    h = 1.0 / (u.shape[0] + 1)
    padded = jnp.pad(u, 1)
    return (2 * u - padded[:-2] - padded[2:]) / h**2 + shift * u


# %% [markdown]
# ## Exercise 1: the conjugate gradient method
#
# CG builds $A$-orthogonal search directions $p_k$ and minimises the error along each. From
# $x_0 = 0$, $r_0 = b$, $p_0 = r_0$, repeat:
#
# $$\alpha_k = \frac{r_k^\top r_k}{p_k^\top A p_k}, \quad x_{k+1} = x_k + \alpha_k p_k, \quad
# r_{k+1} = r_k - \alpha_k A p_k, \quad \beta_k = \frac{r_{k+1}^\top r_{k+1}}{r_k^\top r_k}, \quad
# p_{k+1} = r_{k+1} + \beta_k p_k,$$
#
# until $\lVert r_k \rVert \le \texttt{rtol}\,\lVert b \rVert$ or `max_steps` iterations.
# In exact arithmetic it converges in at most $n$ iterations, in far fewer when the
# eigenvalues of $A$ cluster.
#
# Write `conjugate_gradient(matvec, b, rtol, max_steps)` with a `jax.lax.while_loop`
# (state: `x, r, p, r_dot_r, k`). It must work under `jax.jit` (no Python `if` on arrays)
# and call `matvec` once per iteration.

# %% nbgrader={"grade": false, "grade_id": "conjugate_gradient", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conjugate_gradient(
    matvec: Callable[[Float[Array, " n"]], Float[Array, " n"]], b: Float[Array, " n"], rtol: float = 1e-5,
    max_steps: int = 1000,
) -> Float[Array, " n"]:
    """The solution of A x = b for a symmetric positive definite A given by `matvec`, by CG from x = 0."""
    # Hint: cond stops when r_dot_r <= (rtol * |b|)^2 or k == max_steps; body does one update.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'conjugate_gradient' is not done yet: replace this line with your code.")


# %%
check("conjugate_gradient")

# %% [markdown]
# Solve $-u'' + u = 1$ on 100 points and compare with Lineax, whose operator is the same
# function wrapped with its input shape and the tag that CG requires.
#
# The residual recomputed from the solution, $\lVert A u - b \rVert / \lVert b \rVert$, is
# larger than `rtol`: CG updates $r$ by a recurrence, and in single precision
# ($\epsilon \approx 10^{-7}$) a system with condition number $\kappa \approx 4000$ cannot be
# solved to better than about $\kappa\,\epsilon$. Both solvers agree to far better than that.

# %%
n = 100
b = jnp.ones(n)
u = jax.jit(conjugate_gradient, static_argnums=0)(poisson_matvec, b, 1e-5, 1000)
operator = lx.FunctionLinearOperator(poisson_matvec, jax.eval_shape(lambda: b), tags=lx.positive_semidefinite_tag)
u_lineax = lx.linear_solve(operator, b, lx.CG(rtol=1e-5, atol=1e-5, max_steps=1000)).value
print("largest difference from Lineax:", float(jnp.max(jnp.abs(u - u_lineax))))
print("relative residual:", float(jnp.linalg.norm(poisson_matvec(u) - b) / jnp.linalg.norm(b)))
grid = jnp.linspace(0, 1, n + 2)[1:-1]
plt.plot(grid, u, label="CG")
plt.plot(grid[::10], u_lineax[::10], "k.", label="Lineax CG")
plt.legend();

# %% [markdown]
# ## Exercise 2: Hessian-vector products, forward over reverse
#
# `jax.grad(f)` is a function $x \mapsto \nabla f(x)$; its derivative in the direction $v$
# is $\nabla^2 f(x)\, v$. A forward-mode product (`jax.jvp`) of the reverse-mode gradient
# computes it in one pass, at a few times the cost of a gradient and without any $n \times n$
# array. Write `hvp(f, x, v)` for a scalar function `f` of a vector `x`.

# %% nbgrader={"grade": false, "grade_id": "hvp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hvp(f: Callable[[Float[Array, " n"]], Float[Array, ""]], x: Float[Array, " n"], v: Float[Array, " n"]) -> Float[Array, " n"]:
    """The Hessian of f at x times v, by forward-mode differentiation of the gradient."""
    # Hint: jax.jvp(fun, primals, tangents) returns (fun(*primals), the directional derivative).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'hvp' is not done yet: replace this line with your code.")


# %%
check("hvp")


# %% [markdown]
# ## Newton–CG
#
# Newton's method for minimising $f$ solves $\nabla^2 f(x)\, \delta = -\nabla f(x)$ at
# each step. With CG and `hvp`, the Hessian is never formed: here on the Rosenbrock
# function in 1,000 dimensions (a Hessian of a million entries), from a start where it is
# positive definite.

# %%
def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@jax.jit
def newton_cg_step(x):
    step = conjugate_gradient(lambda v: hvp(rosenbrock, x, v), -jax.grad(rosenbrock)(x), 1e-4, 200)
    return x + step


x = jnp.full(1000, 1.05)
values = [float(rosenbrock(x))]
for _ in range(6):
    x = newton_cg_step(x)
    values.append(float(rosenbrock(x)))
plt.semilogy(values, "o-")
plt.xlabel("Newton-CG step")
plt.ylabel("Rosenbrock value");
