"""Visible tests for 03_keys_and_modules.py.

Run them with `uv run pytest exercises/warmup/test_03_keys_and_modules.py`
(add `--exercise Affine` to check a single exercise).
"""

import jax
import numpy as np
import pytest

from grader import checks


def trajectory_fn(submission, num_steps, beta):
    return jax.jit(lambda x0, key: submission.noisy_trajectory(x0, key, num_steps, beta))


@pytest.mark.exercise("noisy_trajectory")
def test_trajectory_uses_each_key_once(submission, rng, getkey):
    x0 = rng.normal(size=(3,)).astype(np.float32)
    got = checks.assert_no_key_reuse(trajectory_fn(submission, 6, 0.1), x0, getkey(), call="noisy_trajectory")
    checks.assert_shape(got, (7, 3), call="noisy_trajectory(x0 (3,), key, 6, 0.1)")
    checks.assert_close(got[0], x0, call="noisy_trajectory(...)[0]")


@pytest.mark.exercise("noisy_trajectory")
def test_first_step_follows_the_rule(submission, rng, getkey):
    x0, key = rng.normal(size=(2,)).astype(np.float32), getkey()
    got = trajectory_fn(submission, 3, 0.2)(x0, key)
    step_key = jax.random.split(key)[1]
    noise = np.asarray(jax.random.normal(step_key, (2,)))
    expected = np.sqrt(np.float32(0.8)) * x0 + np.sqrt(np.float32(0.2)) * noise
    checks.assert_close(got[1], expected, call="noisy_trajectory(x0, key, 3, 0.2)[1]", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("noisy_trajectory")
def test_trajectory_is_deterministic_per_key(submission, getkey):
    fn, x0 = trajectory_fn(submission, 5, 0.3), np.zeros(2, np.float32)
    key = getkey()
    checks.assert_close(fn(x0, key), fn(x0, key), call="noisy_trajectory twice with the same key")
    checks.assert_different(fn(x0, key), fn(x0, getkey()), call="noisy_trajectory",
                            why="two different keys gave the same trajectory; draw the noise from the key.")


@pytest.mark.exercise("noisy_trajectory")
def test_variance_grows_like_independent_noise(submission, getkey):
    beta, num_steps = 0.2, 8

    @jax.jit
    def variances(key):
        run = jax.vmap(lambda k: submission.noisy_trajectory(np.zeros(2, np.float32), k, num_steps, beta))
        return run(jax.random.split(key, 4000)).var(axis=(0, 2))

    # With independent z_k, Var(x_k) = 1 - (1 - beta)^k; reused noise gives far larger values.
    expected = (1 - (1 - beta) ** np.arange(num_steps + 1)).astype(np.float32)
    checks.assert_close(variances(getkey()), expected, call="variance of x_k over 4000 trajectories from 0",
                        atol=0.05, rtol=0.05)


ACTIVATIONS = {"identity": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}


@pytest.mark.exercise("Affine")
def test_affine_leaves_and_static_data(submission, rng):
    weight, bias = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)
    layer = submission.Affine(weight, bias, "tanh")
    leaves, treedef = jax.tree.flatten(layer)
    checks.assert_close(leaves, [weight, bias], call="jax.tree.leaves(Affine(weight, bias, 'tanh'))")
    rebuilt = jax.tree.unflatten(treedef, [2 * weight, bias])
    if not isinstance(rebuilt, submission.Affine) or rebuilt.activation != "tanh":
        checks.fail("jax.tree.unflatten did not rebuild an Affine with activation 'tanh': check tree_unflatten.")
    checks.assert_close(rebuilt.weight, 2 * weight, call="the weight of the rebuilt Affine")


@pytest.mark.exercise("Affine")
@pytest.mark.parametrize("activation", ["identity", "tanh", "relu"])
def test_affine_computes_the_layer(submission, rng, activation):
    weight, bias = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)
    x = rng.normal(size=(2,)).astype(np.float32)
    got = jax.jit(lambda layer, x: layer(x))(submission.Affine(weight, bias, activation), x)
    expected = ACTIVATIONS[activation](weight @ x + bias)
    checks.assert_close(got, expected, call=f"Affine(weight, bias, {activation!r})(x)", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("Affine")
def test_jit_retraces_only_for_a_new_activation(submission, rng):
    traces = []

    @jax.jit
    def apply(layer, x):
        traces.append(layer.activation)
        return layer(x)

    x = rng.normal(size=(2,)).astype(np.float32)
    make = lambda activation: submission.Affine(
        rng.normal(size=(2, 2)).astype(np.float32), rng.normal(size=(2,)).astype(np.float32), activation
    )
    for activation in ["tanh", "tanh", "tanh", "relu", "relu"]:
        apply(make(activation), x)
    if traces != ["tanh", "relu"]:
        checks.fail(f"jit traced apply(layer, x) for activations {traces} over the calls with "
                    "tanh, tanh, tanh, relu, relu; expected ['tanh', 'relu']: the arrays are children "
                    "(no retrace when they change), the activation is static data.")
