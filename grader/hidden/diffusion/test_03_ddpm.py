"""Hidden tests for 03_ddpm.py: the student's functions against the reference."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.nn import TimeMLP
from course.schedules import DDPMSchedule
from grader import checks
from grader.inputs import normals, with_numpy_weights


@functools.partial(jax.jit, static_argnums=0)  # one compiled program per number of steps, not one per op
def linear_schedule(num_steps, beta_start, beta_end):
    """`DDPMSchedule.linear(num_steps, beta_start, beta_end)`, with the betas' ends as arrays."""
    return DDPMSchedule(jnp.linspace(beta_start, beta_end, num_steps))


def random_schedule(rng, num_steps=12):
    low, high = rng.uniform([1e-3, 0.1], [1e-2, 0.4]).astype(np.float32)
    return linear_schedule(num_steps, low, high)


@functools.cache
def _tiny_model_shape(num_steps):
    return eqx.filter_eval_shape(
        lambda: TimeMLP(2, hidden_dim=16, depth=1, time_embedding_dim=8, max_time=num_steps, key=jax.random.key(0))
    )


def tiny_model(rng, num_steps):
    """A small TimeMLP with random weights, drawn with NumPy."""
    return with_numpy_weights(_tiny_model_shape(num_steps), rng)



@pytest.mark.exercise("forward_noise")
@pytest.mark.points(2)
def test_forward_noise_matches_reference(submission, reference, rng):
    schedule = random_schedule(rng)
    x0, noise = normals(rng, 2, 32, 2)
    t = rng.integers(0, schedule.num_steps, size=32).astype(np.int32)
    batched = lambda fn: jax.jit(jax.vmap(fn, in_axes=(None, 0, 0, 0)))
    got = submission.evaluate(lambda: checks.jitted(batched(submission.forward_noise), schedule, x0, t, noise,
                                                    call="jit(vmap(forward_noise))"))
    expected = batched(reference.forward_noise)(schedule, x0, t, noise)
    checks.assert_close(got, expected, call="vmap(forward_noise) on 32 random points and steps")


@pytest.mark.exercise("ddpm_loss")
@pytest.mark.points(2)
def test_ddpm_loss_matches_reference(submission, reference, rng, getkey):
    schedule = random_schedule(rng)
    model, x0, key = tiny_model(rng, schedule.num_steps), normals(rng, 64, 2), getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.ddpm_loss), model, schedule, x0, key, call="ddpm_loss"))
    expected = eqx.filter_jit(reference.ddpm_loss)(model, schedule, x0, key)
    checks.assert_close(got, expected, call="ddpm_loss(model, schedule, x0, key)", rtol=1e-4)


@pytest.mark.exercise("ddpm_loss")
@pytest.mark.points(2)
def test_ddpm_loss_gradients_match_reference(submission, reference, rng, getkey):
    schedule = random_schedule(rng)
    model, x0, key = tiny_model(rng, schedule.num_steps), normals(rng, 64, 2), getkey()
    grad_of = lambda loss: eqx.filter_jit(eqx.filter_grad(loss))(model, schedule, x0, key)
    got, expected = submission.evaluate(lambda: grad_of(submission.ddpm_loss)), grad_of(reference.ddpm_loss)
    checks.assert_close(got, expected, call="gradient of ddpm_loss w.r.t. the model", rtol=1e-3, atol=1e-5)


@pytest.mark.exercise("ddpm_loss")
@pytest.mark.points(1)
def test_ddpm_loss_uses_the_key(submission, rng, getkey):
    schedule = random_schedule(rng)
    model, x0, keys = tiny_model(rng, schedule.num_steps), normals(rng, 64, 2), (getkey(), getkey())
    loss = lambda key: eqx.filter_jit(submission.ddpm_loss)(model, schedule, x0, key)
    checks.assert_different(
        *submission.evaluate(lambda: [loss(key) for key in keys]),
        call="ddpm_loss", why="two different keys gave the same loss; draw t and the noise from `key`.",
    )


@pytest.mark.exercise("reverse_step")
@pytest.mark.points(2)
def test_reverse_step_matches_reference(submission, reference, rng, getkey):
    schedule = random_schedule(rng)
    model = tiny_model(rng, schedule.num_steps)
    x = normals(rng, 16, 2)
    t = np.arange(16, dtype=np.int32) % schedule.num_steps  # includes the last step, t = 0
    keys = jax.random.split(getkey(), 16)
    batched = lambda fn: eqx.filter_jit(jax.vmap(fn, in_axes=(None, None, 0, 0, 0)))
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(batched(submission.reverse_step), model, schedule,
                                                                 x, t, keys, call="vmap(reverse_step)"))
    expected = batched(reference.reverse_step)(model, schedule, x, t, keys)
    checks.assert_close(got, expected, call="vmap(reverse_step) on 16 random points, t = 0..11", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("ddpm_sample")
@pytest.mark.points(2)
def test_ddpm_sample_matches_reference(submission, reference, rng, getkey):
    schedule = random_schedule(rng)
    model, x_T, key = tiny_model(rng, schedule.num_steps), normals(rng, 8, 2), getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(eqx.filter_jit(submission.ddpm_sample), model,
                                                                 schedule, x_T, key, call="ddpm_sample"))
    expected = eqx.filter_jit(reference.ddpm_sample)(model, schedule, x_T, key)
    checks.assert_close(got, expected, call="ddpm_sample(model, schedule, x_T, key)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("ddpm_sample")
@pytest.mark.points(1)
def test_ddpm_sample_is_one_scan(submission, rng, getkey):
    schedule = random_schedule(rng, num_steps=40)
    model = tiny_model(rng, schedule.num_steps)
    sample = lambda x_T, key: submission.ddpm_sample(model, schedule, x_T, key)
    key = getkey()
    jaxpr = submission.evaluate(lambda: str(jax.make_jaxpr(sample)(np.zeros((4, 2), np.float32), key)))
    if "scan" not in jaxpr or jaxpr.count("random_bits") > 4:
        checks.fail("ddpm_sample should loop with jax.lax.scan, not a Python for loop "
                    "(its jaxpr has no scan or repeats the step 40 times).")
