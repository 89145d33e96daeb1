"""Visible tests for 04_hmc.py.

Run them with `uv run pytest exercises/numerics/test_04_hmc.py`
(add `--exercise leapfrog` to check a single exercise).

The sampling tests are statistical but deterministic: fixed keys, and tolerances of five
standard errors, estimated from the spread between independent chains.
"""

import functools

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks


def banana_log_prob(q):
    """A non-Gaussian target: log pi(q) = -q0^2 / 2 - (q1 - q0^2 / 2)^2 - q1^4 / 20."""
    return -0.5 * q[0] ** 2 - (q[1] - 0.5 * q[0] ** 2) ** 2 - q[1] ** 4 / 20


def numpy_banana_grad(q):
    inner = q[1] - 0.5 * q[0] ** 2
    return np.array([-q[0] + 2 * inner * q[0], -2 * inner - q[1] ** 3 / 5])


def banana_energy(q, p):
    return -banana_log_prob(q) + 0.5 * jnp.sum(p**2)


@pytest.mark.exercise("leapfrog")
def test_leapfrog_equals_numpy_kick_drift_kick(submission, rng):
    q0, p0 = rng.normal(size=(2,)), rng.normal(size=(2,))
    q, p = q0.copy(), p0.copy()
    for _ in range(7):
        p = p + 0.05 * numpy_banana_grad(q)
        q = q + 0.1 * p
        p = p + 0.05 * numpy_banana_grad(q)
    got = jax.jit(submission.leapfrog, static_argnums=(0, 4))(
        jax.grad(banana_log_prob), q0.astype(np.float32), p0.astype(np.float32), 0.1, 7)
    checks.assert_close(got, (q.astype(np.float32), p.astype(np.float32)),
                        call="leapfrog(grad log pi, q, p, 0.1, 7 steps)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("leapfrog")
def test_leapfrog_is_reversible(submission, rng):
    q0, p0 = rng.normal(size=(2,)).astype(np.float32), rng.normal(size=(2,)).astype(np.float32)
    run = jax.jit(lambda q, p: submission.leapfrog(jax.grad(banana_log_prob), q, p, 0.05, 40))
    q1, p1 = run(q0, p0)
    q2, p2 = run(q1, -p1)
    checks.assert_close((q2, -p2), (q0, p0), call="leapfrog forward, flip p, leapfrog again", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("leapfrog")
def test_leapfrog_energy_error_is_second_order(submission):
    """Over a trajectory of fixed length 1.5, |H(end) - H(start)| shrinks like step_size^2."""
    with jax.enable_x64(True):
        q0, p0 = jnp.array([1.2, -0.4]), jnp.array([0.3, 1.1])
        step_sizes = np.array([0.1, 0.05, 0.025, 0.0125])
        errors = []
        for eps in step_sizes:
            q, p = jax.jit(submission.leapfrog, static_argnums=(0, 4))(jax.grad(banana_log_prob), q0, p0, eps,
                                                                       int(round(1.5 / eps)))
            errors.append(abs(float(banana_energy(q, p) - banana_energy(q0, p0))))
    slope = np.polyfit(np.log(step_sizes), np.log(errors), 1)[0]
    if not 1.7 < slope < 2.3:
        checks.fail(f"The energy error of leapfrog shrinks like step_size^{slope:.2f}, expected step_size^2.")


@pytest.mark.exercise("leapfrog")
def test_leapfrog_is_one_loop(submission):
    jaxpr = jax.make_jaxpr(lambda q, p: submission.leapfrog(lambda x: -x, q, p, 0.1, 200))(np.ones(2, np.float32),
                                                                                            np.ones(2, np.float32))
    if len(jaxpr.jaxpr.eqns) > 30:
        checks.fail("leapfrog unrolls its steps: use jax.lax.scan or jax.lax.fori_loop.")


def numpy_leapfrog(q, p, step_size, num_steps):
    for _ in range(num_steps):
        p = p + 0.5 * step_size * numpy_banana_grad(q)
        q = q + step_size * p
        p = p + 0.5 * step_size * numpy_banana_grad(q)
    return q, p


def numpy_banana_energy(q, p):
    return 0.5 * q[0] ** 2 + (q[1] - 0.5 * q[0] ** 2) ** 2 + q[1] ** 4 / 20 + 0.5 * p @ p


@pytest.mark.exercise("hmc_step")
def test_hmc_step_follows_the_recipe(submission, getkey):
    """The momentum and the uniform drawn as the docstring says (so each key is used once), the rest in
    NumPy; both outcomes occur."""
    q = np.array([0.8, -0.3], np.float32)
    keys = jax.random.split(getkey(), 12)
    got_q, got_prob = jax.jit(jax.vmap(lambda k: submission.hmc_step(k, q, banana_log_prob, 0.6, 5)))(keys)

    def draws(key):
        momentum_key, accept_key = jax.random.split(key)
        return jax.random.normal(momentum_key, (2,)), jax.random.uniform(accept_key)

    momenta, uniforms = map(np.asarray, jax.jit(jax.vmap(draws))(keys))
    expected_q, expected_prob = [], []
    for p, u in zip(momenta.astype(np.float64), uniforms, strict=True):
        q_new, p_new = numpy_leapfrog(q.astype(np.float64), p, 0.6, 5)
        prob = min(1.0, np.exp(numpy_banana_energy(q, p) - numpy_banana_energy(q_new, p_new)))
        expected_prob.append(prob)
        expected_q.append(q_new if u < prob else q)
    accepted = [u < prob for u, prob in zip(uniforms, expected_prob, strict=True)]
    assert any(accepted) and not all(accepted), "test inputs: want both accepted and rejected proposals"
    checks.assert_close(got_prob, np.array(expected_prob, np.float32),
                        call="hmc_step(key, q, log pi, 0.6, 5) acceptance probability, 12 keys", rtol=1e-3, atol=1e-5)
    checks.assert_close(got_q, np.array(expected_q, np.float32),
                        call="hmc_step(key, q, log pi, 0.6, 5) next position, 12 keys", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("hmc_sample")
def test_hmc_sample_equals_a_python_loop(submission, getkey):
    key, q = getkey(), np.array([0.5, 0.5], np.float32)
    step = jax.jit(lambda k, q: submission.hmc_step(k, q, banana_log_prob, 0.4, 4))
    expected_q, expected_probs = [], []
    for step_key in jax.random.split(key, 5):
        q, prob = step(step_key, q)
        expected_q.append(np.asarray(q))
        expected_probs.append(np.asarray(prob))
    got = jax.jit(lambda k: submission.hmc_sample(k, np.array([0.5, 0.5], np.float32), banana_log_prob, 0.4, 4, 5))(
        key)
    checks.assert_close(got, (np.stack(expected_q), np.stack(expected_probs)),
                        call="hmc_sample(key, q0, log pi, 0.4, 4, 5 samples)", rtol=1e-5, atol=1e-6)


MEAN = np.array([1.0, -1.0], np.float32)
COV = np.array([[1.0, 0.8], [0.8, 1.0]], np.float32)
PRECISION = np.linalg.inv(COV)
CHAINS, SAMPLES, WARMUP = 32, 400, 100


def gaussian_log_prob(q):
    centred = q - MEAN
    return -0.5 * centred @ PRECISION @ centred


def estimates_and_errors(chains):
    """Mean and covariance from independent chains (C, N, d); standard errors from their spread."""
    chain_means = chains.mean(axis=1)
    centred = chains - MEAN
    chain_covs = np.einsum("cni,cnj->cij", centred, centred) / chains.shape[1]
    estimates = np.concatenate([chain_means.mean(0), chain_covs.mean(0).ravel()])
    spread = np.concatenate([chain_means, chain_covs.reshape(len(chains), -1)], axis=1)
    return estimates, spread.std(axis=0, ddof=1) / np.sqrt(len(chains))


NAMES = ["mean[0]", "mean[1]", "cov[0,0]", "cov[0,1]", "cov[1,0]", "cov[1,1]"]


@functools.cache
def chain_runner(hmc_sample):
    """One compiled program for CHAINS chains, shared by the tests of the same function."""
    return jax.jit(jax.vmap(lambda k, q0: hmc_sample(k, q0, gaussian_log_prob, 0.3, 6, SAMPLES)[0]))


def hmc_chains(submission, key):
    starts = np.tile(np.array([4.0, 4.0], np.float32), (CHAINS, 1))  # far from the mode: a stuck chain fails
    return np.asarray(chain_runner(submission.hmc_sample)(jax.random.split(key, CHAINS), starts))[:, WARMUP:]


@pytest.mark.exercise("hmc_sample")
def test_hmc_samples_a_correlated_gaussian(submission, getkey):
    estimates, errors = estimates_and_errors(hmc_chains(submission, getkey()))
    truth = np.concatenate([MEAN, COV.ravel()])
    iid_error = np.sqrt(np.diag(COV) / (CHAINS * (SAMPLES - WARMUP)))
    if np.any(errors[:2] > 5 * iid_error):  # 25 times fewer effective samples than draws
        checks.fail(f"The chains mix far too slowly: standard errors of the mean {errors[:2]}, "
                    f"expected about {iid_error}.")
    for name, got, expected, error in zip(NAMES, estimates, truth, errors, strict=True):
        if abs(got - expected) > 5 * error + 1e-3:
            checks.fail(f"HMC estimate of {name}: yours {got:.3f}, expected {expected:.3f} "
                        f"(more than 5 standard errors, {error:.3f} each, apart).")


@pytest.mark.exercise("hmc_sample")
def test_hmc_agrees_with_blackjax_nuts(submission, getkey):
    """NUTS runs one long chain (cheaper to compile), cut into CHAINS batches: errors by batch means."""
    hmc = hmc_chains(submission, getkey())
    nuts = blackjax.nuts(gaussian_log_prob, step_size=0.3, inverse_mass_matrix=jnp.ones(2))

    @jax.jit
    def nuts_chain(key):
        def transition(state, step_key):
            state, _ = nuts.step(step_key, state)
            return state, state.position
        return jax.lax.scan(transition, nuts.init(jnp.asarray(MEAN)), jax.random.split(key, CHAINS * SAMPLES))[1]

    batches = np.asarray(nuts_chain(getkey())).reshape(CHAINS, SAMPLES, 2)[:, WARMUP:]
    (hmc_estimates, hmc_errors), (nuts_estimates, nuts_errors) = map(estimates_and_errors, (hmc, batches))
    for name, ours, theirs, error in zip(NAMES, hmc_estimates, nuts_estimates, np.hypot(hmc_errors, nuts_errors),
                                         strict=True):
        if abs(ours - theirs) > 5 * error + 1e-3:
            checks.fail(f"{name}: your HMC gives {ours:.3f}, BlackJAX's NUTS {theirs:.3f}, "
                        f"more than 5 standard errors ({error:.3f}) apart.")
