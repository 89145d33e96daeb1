"""Hidden tests for 04_hmc.py: the student's functions against the reference.

Statistical checks use fixed keys and tolerances of five standard errors, estimated from
the spread between independent chains.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def funnel_log_prob(q):
    """A mildly funnel-shaped 3-D target."""
    return -0.5 * q[0] ** 2 / 1.5 - 0.5 * jnp.sum(q[1:] ** 2) * jnp.exp(-0.3 * q[0]) + 0.3 * q[0] - 0.1 * q[1] * q[2]


@pytest.mark.exercise("leapfrog")
@pytest.mark.points(2)
def test_leapfrog_matches_reference(submission, reference, rng):
    q, p = normals(rng, 3), normals(rng, 3)
    step_size, num_steps = float(rng.uniform(0.05, 0.2)), 9
    run = lambda leapfrog: jax.jit(leapfrog, static_argnums=(0, 4))(jax.grad(funnel_log_prob), q, p, step_size,
                                                                      num_steps)
    checks.assert_close(submission.evaluate(run, submission.leapfrog), run(reference.leapfrog),
                        call=f"leapfrog(grad log pi, q (3,), p (3,), {step_size:.3f}, 9)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("leapfrog")
@pytest.mark.points(1)
def test_leapfrog_reversible_and_volume_preserving(submission, rng):
    q0, p0 = normals(rng, 3), normals(rng, 3)

    def there_and_back_and_jacobian():
        flow = lambda state: submission.leapfrog(jax.grad(funnel_log_prob), state[0], state[1], 0.1, 10)
        q1, p1 = jax.jit(flow)((q0, p0))
        q2, p2 = jax.jit(flow)((q1, -p1))
        jacobian = jax.jit(jax.jacfwd(lambda z: jnp.concatenate(flow((z[:3], z[3:])))))(np.concatenate([q0, p0]))
        return (q2, p2), jacobian

    (q2, p2), jacobian = submission.evaluate(there_and_back_and_jacobian)
    checks.assert_close((q2, -p2), (q0, p0), call="leapfrog there and back (momentum flipped)", rtol=1e-4, atol=1e-4)
    checks.assert_close(np.linalg.det(np.asarray(jacobian, np.float64)).astype(np.float32), np.float32(1.0),
                        call="det of the Jacobian of the leapfrog map (volume preservation)", rtol=1e-3)


@pytest.mark.exercise("hmc_step")
@pytest.mark.points(3)
def test_hmc_step_matches_reference(submission, reference, rng, getkey):
    q = normals(rng, 3)
    keys = jax.random.split(getkey(), 16)
    run = lambda hmc_step: jax.jit(jax.vmap(lambda k: hmc_step(k, q, funnel_log_prob, 0.5, 6)))(keys)
    got, expected = submission.evaluate(run, submission.hmc_step), run(reference.hmc_step)
    checks.assert_close(got[1], expected[1], call="hmc_step(key, q, log pi, 0.5, 6) acceptance probability, 16 keys",
                        rtol=1e-4, atol=1e-6)
    checks.assert_close(got[0], expected[0], call="hmc_step(key, q, log pi, 0.5, 6) next position, 16 keys",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("hmc_step")
@pytest.mark.points(1)
def test_hmc_step_rejects_a_diverging_proposal_and_reuses_no_key(submission, getkey):
    q = np.array([0.5, -0.5, 0.2], np.float32)
    stiff = lambda x: -50.0 * jnp.sum(x**2)  # step 0.5 is far beyond leapfrog's stability limit here
    key = getkey()
    got_q, got_prob = submission.evaluate(lambda: checks.assert_no_key_reuse(
        submission.hmc_step, key, q, stiff, 0.5, 20, call="hmc_step(key, q, stiff log pi, 0.5, 20)"))
    checks.assert_close(got_q, q, call="hmc_step with an exploding proposal (must stay at q)", rtol=0, atol=0)
    if not float(got_prob) < 1e-6:
        checks.fail(f"hmc_step with an exploding proposal: acceptance probability {float(got_prob)!r}, expected ~0.")


@pytest.mark.exercise("hmc_sample")
@pytest.mark.points(2)
def test_hmc_sample_matches_reference(submission, reference, rng, getkey):
    q0, key = normals(rng, 3), getkey()
    run = lambda sample: jax.jit(lambda k: sample(k, q0, funnel_log_prob, 0.3, 5, 25))(key)
    checks.assert_close(submission.evaluate(run, submission.hmc_sample), run(reference.hmc_sample),
                        call="hmc_sample(key, q0 (3,), log pi, 0.3, 5, 25 samples)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("hmc_sample")
@pytest.mark.points(2)
def test_hmc_samples_an_anisotropic_gaussian(submission, getkey):
    stds = np.array([0.5, 1.0, 2.0], np.float32)
    mean = np.array([-1.0, 0.0, 2.0], np.float32)
    log_prob = lambda q: -0.5 * jnp.sum(((q - mean) / stds) ** 2)
    chains, samples, warmup = 32, 400, 100
    starts = np.tile(np.array([3.0, 3.0, -3.0], np.float32), (chains, 1))
    keys = jax.random.split(getkey(), chains)
    run = lambda: jax.jit(jax.vmap(lambda k, q0: submission.hmc_sample(k, q0, log_prob, 0.35, 8, samples)[0]))(
        keys, starts)
    draws = np.asarray(submission.evaluate(run))[:, warmup:]
    chain_means, chain_vars = draws.mean(1), ((draws - mean) ** 2).mean(1)
    for name, per_chain, truth in (("mean", chain_means, mean), ("variance", chain_vars, stds**2)):
        estimate, error = per_chain.mean(0), per_chain.std(0, ddof=1) / np.sqrt(chains)
        for i in range(3):
            if abs(estimate[i] - truth[i]) > 5 * error[i] + 1e-3:
                checks.fail(f"HMC estimate of the {name} of coordinate {i}: yours {estimate[i]:.3f}, expected "
                            f"{truth[i]:.3f} (more than 5 standard errors, {error[i]:.3f}, apart).")
    iid_error = stds / np.sqrt(chains * (samples - warmup))
    if np.any(chain_means.std(0, ddof=1) / np.sqrt(chains) > 5 * iid_error):
        checks.fail("The chains mix far too slowly (standard errors of the means over 5 times the i.i.d. ones).")
