"""Hidden tests for 03_keys_and_modules.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def jitted_trajectory(namespace, num_steps, beta):
    return jax.jit(lambda x0, key: namespace.noisy_trajectory(x0, key, num_steps, beta))


@pytest.mark.exercise("noisy_trajectory")
@pytest.mark.points(2)
def test_noisy_trajectory_matches_reference(submission, reference, rng, getkey):
    num_steps, beta = int(rng.integers(3, 9)), float(rng.uniform(0.05, 0.5))
    x0, key = normals(rng, 4), getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(jitted_trajectory(submission, num_steps, beta), x0,
                                                                 key, call="noisy_trajectory"))
    expected = jitted_trajectory(reference, num_steps, beta)(x0, key)
    checks.assert_close(got, expected, call=f"noisy_trajectory(x0 (4,), key, {num_steps}, {beta:.3f})",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("noisy_trajectory")
@pytest.mark.points(1)
def test_noisy_trajectory_draws_new_noise_each_step(submission, getkey):
    keys = getkey(), getkey()
    got = submission.evaluate(lambda: jitted_trajectory(submission, 4, 0.5)(np.zeros(3, np.float32), keys[0]))
    increments = np.asarray(got[2:]) - np.sqrt(0.5) * np.asarray(got[1:-1])  # sqrt(beta) * z_k, k >= 1
    first = np.asarray(got[1])  # sqrt(beta) * z_0
    if any(np.allclose(first, step, atol=1e-5) for step in increments):
        checks.fail("noisy_trajectory adds the same noise at two steps: split the key at every step.")
    submission.evaluate(lambda: checks.assert_no_key_reuse(jitted_trajectory(submission, 4, 0.5),
                                                           np.zeros(3, np.float32), keys[1], call="noisy_trajectory"))


@pytest.mark.exercise("noisy_trajectory")
@pytest.mark.points(1)
def test_noisy_trajectory_depends_on_the_key(submission, getkey):
    x0, key, other_key = np.ones(2, np.float32), getkey(), getkey()

    def three_trajectories():
        fn = jitted_trajectory(submission, 3, 0.2)
        return fn(x0, key), fn(x0, key), fn(x0, other_key)

    first, again, other = submission.evaluate(three_trajectories)
    checks.assert_close(first, again, call="noisy_trajectory twice with one key")
    checks.assert_different(first, other, call="noisy_trajectory",
                            why="two different keys gave the same trajectory.")


def random_weights(rng, n_in=3, n_out=4):
    """The weight and bias of a random Affine layer."""
    return normals(rng, n_out, n_in), normals(rng, n_out)


@pytest.mark.exercise("Affine")
@pytest.mark.points(1)
@pytest.mark.parametrize("activation", ["identity", "tanh", "relu"])
def test_affine_matches_reference(submission, reference, rng, activation):
    weight, bias, xs = normals(rng, 4, 3), normals(rng, 4), normals(rng, 5, 3)
    apply = lambda layer, xs: jax.vmap(layer)(xs)
    got = submission.evaluate(lambda: jax.jit(apply)(submission.Affine(weight, bias, activation), xs))
    expected = jax.jit(apply)(reference.Affine(weight, bias, activation), xs)
    checks.assert_close(got, expected, call=f"vmap(Affine(weight, bias, {activation!r}))(xs)", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("Affine")
@pytest.mark.points(1)
def test_affine_gradient_is_an_affine(submission, reference, rng):
    x = normals(rng, 3)
    loss = lambda layer: (layer(x) ** 2).sum()
    weight, bias = random_weights(rng)

    def gradient():  # its activation and arrays, (None, None) if it is not an Affine
        got = jax.jit(jax.grad(loss))(submission.Affine(weight, bias, "tanh"))
        return (got.activation, (got.weight, got.bias)) if isinstance(got, submission.Affine) else (None, None)

    activation, got = submission.evaluate(gradient)
    if activation != "tanh":
        checks.fail("jax.grad with respect to an Affine should return an Affine with the same activation.")
    expected = jax.jit(jax.grad(loss))(reference.Affine(weight, bias, "tanh"))
    checks.assert_close(got, (expected.weight, expected.bias),
                        call="grad of (layer(x)**2).sum() with respect to (weight, bias)", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("Affine")
@pytest.mark.points(1)
def test_affine_static_activation_retraces(submission, rng):
    x = normals(rng, 3)
    activations = ["relu", "identity", "relu", "identity", "tanh"]
    weights = [random_weights(rng) for _ in activations]

    def activations_traced():
        traces = []

        @jax.jit
        def apply(layer, x):
            traces.append(layer.activation)
            return layer(x)

        for activation, (weight, bias) in zip(activations, weights, strict=True):
            apply(submission.Affine(weight, bias, activation), x)
        return traces

    traces = submission.evaluate(activations_traced)
    if traces != ["relu", "identity", "tanh"]:
        checks.fail(f"jit traced for activations {traces}, expected ['relu', 'identity', 'tanh']: "
                    "the activation must be static data (aux_data), the arrays children.")
