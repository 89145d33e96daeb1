"""Sample quality of the reference diffusion models, trained on the CPU.

For each toy data set (swiss roll, 8 Gaussians):
1. train the reference DDPM of `solutions/diffusion/03_ddpm.py` (epsilon loss, linear
   schedule, T = 1000) and sample 2,000 points with the 1,000-step ancestral sampler;
2. train a continuous-time model with the weighted DSM loss of `solutions/diffusion/04_sde.py`
   for the same number of steps and sample with the probability-flow ODE (diffrax, Tsit5,
   adaptive steps);
3. compare each with fresh data by the sliced Wasserstein distance, next to the
   data-vs-data floor (two independent data samples of the same size, 10,000 points).
   Distances and floors are averaged over several independent draws, since one draw is
   noisy; a control line scores the data blurred by extra noise, to show what a visibly
   worse sampler gets. The energy distance is printed too, on 2,500-point subsets.

Targets (the course's promise): DDPM training <= 60 s, DDPM distance <= 1.5 x floor, and
the ODE sampler as good with far fewer network evaluations.

    uv run python benchmarks/diffusion_quality.py [--steps 8000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from benchmarks.results import Table, save
from course import data, metrics, training
from course.nn import TimeMLP
from course.schedules import VPSDE, DDPMSchedule
from grader import paths
from grader.loader import load_script

NUM_SAMPLES = 10_000  # per side; the floor shrinks like 1/sqrt(n), so larger n is stricter
ENERGY_SAMPLES = 2_500  # the energy distance is quadratic in memory: computed on subsets
TIME_BUDGET_S = 60.0
MAX_RATIO = 1.5
TSIT5_EVALUATIONS_PER_STEP = 6  # 7 stages, the first reused from the previous step (FSAL)
ODE_TOLERANCES = (1e-3, 1e-4)

DATASETS: dict[str, Callable] = {
    "swiss roll": lambda key, n: data.swiss_roll(key, n),
    "8 gaussians": lambda key, n: data.eight_gaussians().sample(key, n),
}
# The same data blurred by extra noise: what a visibly worse sampler scores.
BLURRED: dict[str, Callable] = {
    "swiss roll": lambda key, n: data.swiss_roll(key, n, noise=1.0),
    "8 gaussians": lambda key, n: data.eight_gaussians(std=0.3).sample(key, n),
}


class Distances(NamedTuple):
    """Sliced Wasserstein and energy distances, averaged over independent data draws."""

    sliced_wasserstein: float
    energy: float


def distances(samples, sample_data, key, repeats: int) -> tuple[Distances, Distances]:
    """Distances of the samples to fresh data, and the data-vs-data floor of each."""
    to_model, to_data = [], []
    for draw_key in jax.random.split(key, repeats):
        data_key, other_key, projection_key = jax.random.split(draw_key, 3)
        fresh, other = sample_data(data_key, NUM_SAMPLES), sample_data(other_key, NUM_SAMPLES)
        for found, candidate in ((to_model, samples), (to_data, other)):
            found.append([metrics.sliced_wasserstein(candidate, fresh, projection_key),
                          metrics.energy_distance(candidate[:ENERGY_SAMPLES], fresh[:ENERGY_SAMPLES])])
    mean = lambda found: Distances(*(float(v) for v in jnp.mean(jnp.array(found), axis=0)))
    return mean(to_model), mean(to_data)


def timed(fn, *args):
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args))
    return result, time.perf_counter() - start


def benchmark(name: str, sample_data, args, ddpm, sde_module) -> tuple[list[str], Table]:
    keys = iter(jax.random.split(jax.random.key(args.seed), 16))
    dataset = sample_data(next(keys), 50_000)
    x_T = jax.random.normal(next(keys), (NUM_SAMPLES, 2))

    schedule = DDPMSchedule.linear(num_steps=1000)
    model = TimeMLP(2, max_time=schedule.num_steps, key=next(keys))
    ddpm_loss = lambda model, batch, key: ddpm.ddpm_loss(model, schedule, batch, key)
    train = lambda model, loss, key: training.train(
        loss, model, dataset, key=key, num_steps=args.steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, progress=False,
    )[0]
    model, train_s = timed(train, model, ddpm_loss, next(keys))
    trajectory, sample_s = timed(eqx.filter_jit(ddpm.ddpm_sample), model, schedule, x_T, next(keys))
    ddpm_distance, floor = distances(trajectory[-1], sample_data, next(keys), args.repeats)
    ratio = ddpm_distance.sliced_wasserstein / floor.sliced_wasserstein
    ok = train_s <= TIME_BUDGET_S and ratio <= MAX_RATIO
    blurred, _ = distances(BLURRED[name](next(keys), NUM_SAMPLES), sample_data, next(keys), args.repeats)
    lines = [
        f"{name}: data-vs-data floor SW {floor.sliced_wasserstein:.4f}, energy {floor.energy:.4f}",
        f"  (control) data with extra noise                                      {describe(blurred, floor)}",
        f"  DDPM              train {train_s:5.1f} s (budget {TIME_BUDGET_S:.0f} s)  sample {sample_s:4.1f} s  "
        f"NFE {schedule.num_steps:4d}  {describe(ddpm_distance, floor)}  {'OK' if ok else 'MISSED'} "
        f"(target SW <= {MAX_RATIO} x floor)",
    ]
    rows = [row("data vs data (the floor)", None, None, None, floor, floor, None),
            row("(control) data with extra noise", None, None, None, blurred, floor, None),
            row("DDPM, ancestral sampler", train_s, sample_s, schedule.num_steps, ddpm_distance, floor,
                "ok" if ok else "missed")]

    sde = VPSDE()
    score_model = TimeMLP(2, max_time=1.0, key=next(keys))
    dsm_loss = lambda model, batch, key: sde_module.weighted_dsm_loss(model, sde, batch, key)
    score_model, sde_train_s = timed(train, score_model, dsm_loss, next(keys))
    lines.append(f"  VP-SDE model      train {sde_train_s:5.1f} s")
    for tolerance in ODE_TOLERANCES:
        solve = eqx.filter_jit(partial(sde_module.solve_probability_flow, rtol=tolerance, atol=tolerance))
        solution, ode_s = timed(solve, score_model, sde, x_T)
        ode_distance, _ = distances(solution.ys[-1], sample_data, next(keys), args.repeats)
        evaluations = TSIT5_EVALUATIONS_PER_STEP * int(solution.stats["num_steps"]) + 1
        lines.append(f"  PF-ODE tol {tolerance:.0e}                            sample {ode_s:4.1f} s  "
                     f"NFE {evaluations:4d}  {describe(ode_distance, floor)}")
        rows.append(row(f"VP-SDE, PF-ODE tol {tolerance:.0e}", sde_train_s, ode_s, evaluations, ode_distance, floor,
                        None))
    return lines, Table(name, ["sampler", "train (s)", "sample (s)", "NFE", "SW", "SW / floor", "energy",
                               "energy / floor", "target"], rows,
                        note=f"{NUM_SAMPLES} samples; distances to fresh data averaged over {args.repeats} draws, "
                             f"energy on {ENERGY_SAMPLES}-point subsets; target: DDPM training <= {TIME_BUDGET_S:.0f} "
                             f"s and SW <= {MAX_RATIO} x floor")


def row(sampler: str, train_s, sample_s, evaluations, found: Distances, floor: Distances, target) -> list:
    """One row of a data set's `Table`."""
    return [sampler, train_s, sample_s, evaluations, found.sliced_wasserstein,
            found.sliced_wasserstein / floor.sliced_wasserstein, found.energy, found.energy / floor.energy, target]


def describe(found: Distances, floor: Distances) -> str:
    return (f"SW {found.sliced_wasserstein:.4f} = {found.sliced_wasserstein / floor.sliced_wasserstein:.2f} x floor, "
            f"energy {found.energy:.4f} = {found.energy / floor.energy:.2f} x floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000, help="training steps per model")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--repeats", type=int, default=20, help="independent data draws per distance")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ddpm = load_script(paths.SOLUTIONS / "diffusion" / "03_ddpm.py").module
    sde_module = load_script(paths.SOLUTIONS / "diffusion" / "04_sde.py").module
    settings = f"{args.steps} training steps, batch {args.batch_size}"
    print(f"{settings}, {NUM_SAMPLES} samples, "
          f"distances averaged over {args.repeats} draws; {jax.device_count()} {jax.default_backend()} device(s)")
    tables = []
    for name, sample_data in DATASETS.items():
        lines, table = benchmark(name, sample_data, args, ddpm, sde_module)
        for line in lines:
            print(line, flush=True)
        tables.append(table)
    ddpm_rows = {table.title: dict(zip(table.columns, table.rows[2], strict=True)) for table in tables}
    save("diffusion_quality", tables, summary=f"{settings}; DDPM SW over the floor: " + ", ".join(
        f"{name} {found['SW / floor']:.2f}x (trained in {found['train (s)']:.0f} s)"
        for name, found in ddpm_rows.items()))


if __name__ == "__main__":
    main()
