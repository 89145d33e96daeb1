import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.schedules import VPSDE, DDPMSchedule


def test_linear_schedule_values():
    schedule = DDPMSchedule.linear(num_steps=100, beta_start=1e-3, beta_end=0.05)
    assert schedule.num_steps == 100
    assert schedule.betas.shape == schedule.alphas.shape == schedule.alpha_bars.shape == (100,)
    np.testing.assert_allclose(schedule.betas[jnp.array([0, -1])], [1e-3, 0.05], rtol=1e-6)
    np.testing.assert_allclose(np.diff(schedule.betas), 0.049 / 99, rtol=1e-4)
    np.testing.assert_allclose(schedule.alphas, 1.0 - schedule.betas)
    betas = np.asarray(schedule.betas, np.float64)
    np.testing.assert_allclose(schedule.alpha_bars, np.cumprod(1.0 - betas), rtol=1e-5)


def test_default_linear_schedule_is_ho_et_al():
    schedule = DDPMSchedule.linear()
    assert schedule.num_steps == 1000
    np.testing.assert_allclose(schedule.betas[jnp.array([0, -1])], [1e-4, 0.02], rtol=1e-6)
    # Index 0 is the first noising step: alpha_bars[0] = alphas[0].
    np.testing.assert_allclose(schedule.alpha_bars[0], 1.0 - 1e-4, rtol=1e-7)
    assert 3e-5 < schedule.alpha_bars[-1] < 5e-5


@pytest.mark.parametrize("make", [DDPMSchedule.linear, DDPMSchedule.cosine])
def test_alpha_bars_decrease_from_one_to_zero(make):
    alpha_bars = make().alpha_bars
    assert jnp.all(jnp.diff(alpha_bars) < 0)
    assert 0.99 < alpha_bars[0] < 1.0
    assert 0.0 <= alpha_bars[-1] < 1e-3


def test_cosine_schedule_matches_nichol_dhariwal():
    num_steps, s = 200, 0.008

    def f(u):
        return np.cos((u / num_steps + s) / (1.0 + s) * math.pi / 2.0) ** 2

    schedule = DDPMSchedule.cosine(num_steps=num_steps, s=s)
    steps = np.arange(num_steps)
    unclipped = 1.0 - f(steps + 1) / f(steps) < 0.999
    assert not unclipped[-1] and unclipped[:-1].all()
    expected = f(steps + 1) / f(0)
    np.testing.assert_allclose(schedule.alpha_bars[:-1], expected[:-1], rtol=1e-4)
    np.testing.assert_allclose(schedule.betas[-1], 0.999, rtol=1e-6)
    assert jnp.all(schedule.betas <= 0.999)


def test_schedule_from_betas_and_under_jit():
    schedule = DDPMSchedule(jnp.array([0.1, 0.2, 0.5]))
    np.testing.assert_allclose(schedule.alpha_bars, [0.9, 0.72, 0.36], rtol=1e-6)
    with pytest.raises((ValueError, TypeError), match="betas"):
        DDPMSchedule(jnp.ones((2, 2)))

    @eqx.filter_jit
    def last_alpha_bar(schedule):
        return schedule.alpha_bars[schedule.num_steps - 1]

    np.testing.assert_allclose(last_alpha_bar(schedule), 0.36, rtol=1e-6)


def test_vpsde_beta_drift_and_diffusion():
    sde = VPSDE()
    np.testing.assert_allclose(sde.beta(0.0), 0.1, rtol=1e-6)
    np.testing.assert_allclose(sde.beta(1), 20.0, rtol=1e-6)
    np.testing.assert_allclose(sde.beta(jnp.array([0.25, 0.5])), [5.075, 10.05], rtol=1e-6)
    x = jnp.array([1.0, -2.0])
    np.testing.assert_allclose(sde.drift(x, 0.5), -0.5 * 10.05 * x, rtol=1e-6)
    np.testing.assert_allclose(sde.diffusion(0.5) ** 2, sde.beta(0.5), rtol=1e-6)
    assert sde.diffusion(jnp.linspace(0.0, 1.0, 4)).shape == (4,)
    custom = VPSDE(beta_min=1.0, beta_max=3.0)
    np.testing.assert_allclose(custom.beta(0.5), 2.0)


def test_vpsde_is_static_and_jittable():
    sde = VPSDE(beta_min=0.2, beta_max=10.0)
    assert jax.tree.leaves(sde) == []
    drift = jax.jit(jax.vmap(sde.drift, in_axes=(0, None)))(jnp.ones((3, 2)), 1.0)
    np.testing.assert_allclose(drift, -5.0, rtol=1e-6)


def _public_names(obj):
    return {name for name in dir(obj) if not name.startswith("_")}


def test_schedules_give_no_exercise_answers():
    # Marginals, noising functions and samplers are exercises; the schedules must not hold them.
    assert _public_names(VPSDE()) == {"beta", "beta_min", "beta_max", "drift", "diffusion"}
    assert _public_names(DDPMSchedule.linear(num_steps=3)) == {
        "alpha_bars",
        "alphas",
        "betas",
        "cosine",
        "linear",
        "num_steps",
    }
