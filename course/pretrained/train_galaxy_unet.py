"""Train the galaxy diffusion model shipped with the course (the `astro` track).

    uv run python -m course.pretrained.train_galaxy_unet            # defaults: the shipped model
    uv run python -m course.pretrained.train_galaxy_unet --help     # options

A DDPM (Ho et al. 2020) with the cosine schedule of `course.schedules.DDPMSchedule` on the
noiseless, unconvolved galaxy images of `course.data.galaxies` (the `truth` images: the
prior of the reconstruction exercises). The `course.nn.UNet` is trained by v-prediction on
the images multiplied by `--data-scale` (`course.nn.v_prediction`: the images' pixel
standard deviation is about 0.1), on the steps that the shipped sampling schedule keeps;
`course.pretrained.load_galaxy_unet` wraps it into the noise predictor the exercises use.

Training has two phases. The first minimises that pixel loss alone. The second
(`--finetune-steps`, at the lower `--finetune-learning-rate`, from the weights the first
kept) adds, for the steps below `--moment-loss-max-step`, `--moment-loss-weight` times
the squared errors of a few Gaussian-weighted moments of the image (`moment_weights`:
flux, centroid, the two quadrupole components of the shape, and size, in windows of
1.5, 3 and 5 pixels). They are linear in the image, so the exact posterior mean still
minimises the loss; but the small network trained on the pixel loss alone leaves errors
in them that cost little in the pixel loss and much in the galaxies it samples (they
come out too round: see `benchmarks/astro_quality.py`). At higher steps the galaxy's
moments are mostly unknown, and their large unavoidable errors would drown the rest of
the loss. `--finetune-steps 0` skips the second phase.

On the benchmark (1,000 samples; Wasserstein-1 distances over the data-vs-data floor of
flux, half-light radius, ellipticity and peak), the shipped model scored 2.76, 4.19,
17.8 and 2.06 after the first phase and 3.38, 3.12, 10.8 and 2.41 after the second. The
same fine-tuning of an earlier first-phase model (4.30, 4.67, 17.6, 2.09) gave 3.07,
2.69, 11.1 and 1.66; with `--moment-loss-weight 1`, ellipticity 9.5 but half-light radius
5.9 (the sky around the galaxies came out noisier); with `--moment-loss-max-step 300`,
2.44, 3.37, 11.5 and 1.77. Over these and three fine-tunings of two other first-phase
models, the ellipticity fell every time, from 16-18 to 8.7-11.5; flux, size and peak
moved both ways, by about as much as single runs differ.
Training with the moment loss from the first step instead (an earlier version of this
script) made the shapes better still but the flux, size and peak worse (one run with
position channels, weight 0.1: ellipticity 6.4, but flux 4.8, half-light radius 8.5,
peak 3.5).

`--position-channels` (off in the shipped recipe) gives the network each pixel's position
in the stamp, so that it can tell a galaxy's faint outskirts from the sky beyond them.
Two runs of it alone (first phase only), from different initial weights, scored flux
2.95 and 4.31 and half-light radius 3.40 and 5.59 times the floor: no clear gain over the
two first-phase runs above, and a measure of how far single runs differ.

The model is class-conditional (disk- or bulge-dominated); the label is dropped with
probability `--label-dropout`, so that the same network is also an unconditional model,
as classifier-free guidance needs.

In the first phase the learning rate warms up over `--warmup-steps` and decays over
`--steps`, and the phase stops after `--stop-after` steps (0: all of them); the second
phase has its own warm-up and decay. The shipped weights are those of the defaults: the
first 2,500 of the 4,000 scheduled steps, then 800 of fine-tuning (`galaxy_unet.json`
holds the training log).

Each phase keeps an exponential moving average of the trained weights (`--ema-decay`,
`--finetune-ema-decay`), bias-corrected as Adam's moments are (the average starts at the
phase's initial weights, whose share after `n` steps, `decay ** n`, is removed). Every
`--checkpoint-every` steps they are written to `--output` (an equinox `.eqx` file) with a
`.json` file next to it holding the hyperparameters, the training log and the file's
SHA-256, which `course.pretrained.load_galaxy_unet` checks.

Data parallel: each batch is split along its first axis over all of `jax.devices()` (the
parameters are replicated), so the same command uses every GPU of a machine; on a CPU
there is one device and nothing changes. `--batch-size` must then be a multiple of the
number of devices.
"""

import argparse
import dataclasses
import hashlib
import json
import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float

from course.data.galaxies import load_galaxies
from course.nn.unet import UNet, count_parameters
from course.nn.v_prediction import VPredictionModel
from course.pretrained import DEFAULT_MAX_NOISE_LEVEL, sampling_schedule

DEFAULT_OUTPUT = pathlib.Path(__file__).with_name("galaxy_unet.eqx")
MOMENT_WIDTHS = (1.5, 3.0, 5.0)  # pixels: the Gaussian windows of the moments in the loss


@dataclasses.dataclass
class Config:
    steps: int = 4000
    stop_after: int = 2500
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    ema_decay: float = 0.999
    finetune_steps: int = 800
    finetune_learning_rate: float = 3e-4
    finetune_warmup_steps: int = 100
    finetune_ema_decay: float = 0.995
    moment_loss_weight: float = 0.3
    moment_loss_max_step: int = 100
    label_dropout: float = 0.15
    channels: tuple[int, ...] = (16, 32, 64)
    blocks_per_level: int = 1
    position_channels: bool = False
    num_diffusion_steps: int = 1000
    max_noise_level: float = DEFAULT_MAX_NOISE_LEVEL
    data_scale: float = 10.0
    seed: int = 0
    checkpoint_every: int = 500


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with its own optimiser, learning-rate schedule and moving
    average, starting from the weights the previous phase kept."""

    name: str
    num_steps: int
    learning_rate: optax.Schedule
    ema_decay: float
    moment_loss_weight: float


def phases(config: Config) -> list[Phase]:
    """The main phase (the pixel loss alone) and, unless `finetune_steps` is 0, the
    fine-tuning phase with the moment loss."""
    for warmup, total in [("warmup_steps", "steps"), ("finetune_warmup_steps", "finetune_steps")]:
        if getattr(config, total) and getattr(config, warmup) >= getattr(config, total):
            raise ValueError(f"--{warmup.replace('_', '-')} must be smaller than --{total.replace('_', '-')}.")
    main_phase = Phase(
        "pixel loss",
        min(config.steps, config.stop_after or config.steps),
        optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps, config.steps,
                                           end_value=config.learning_rate / 20),
        config.ema_decay,
        0.0,
    )
    if not config.finetune_steps:
        return [main_phase]
    finetune = Phase(
        "fine-tuning with the moment loss",
        config.finetune_steps,
        optax.warmup_cosine_decay_schedule(0.0, config.finetune_learning_rate, config.finetune_warmup_steps,
                                           config.finetune_steps, end_value=config.finetune_learning_rate / 20),
        config.finetune_ema_decay,
        config.moment_loss_weight,
    )
    return [main_phase, finetune]


def sha256_of(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(model: UNet, path: pathlib.Path, metadata: dict) -> None:
    """Write the weights to `path` and the metadata (with the weights' SHA-256) next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    eqx.tree_serialise_leaves(temporary, model)
    temporary.replace(path)
    metadata = dict(metadata, weights=path.name, sha256=sha256_of(path))
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")


def debiased(ema, initial, initial_share: float):
    """Remove the initial weights' share from a moving average that started at them."""
    return jax.tree.map(lambda e, p: (e - initial_share * p) / (1.0 - initial_share), ema, initial)


def schedule_spec(config: Config) -> dict:
    return {"kind": "cosine", "num_steps": config.num_diffusion_steps, "max_noise_level": config.max_noise_level}


def moment_weights(size: int, widths: tuple[float, ...] = MOMENT_WIDTHS) -> Float[Array, "k size size"]:
    """The Gaussian-weighted moments of an image about the stamp centre, as unit vectors of
    pixel weights: for each width, the flux, the two centroid components, the two
    quadrupole components (the shape) and the size."""
    rows, cols = np.indices((size, size)) - (size - 1) / 2
    weights = []
    for width in widths:
        window = np.exp(-(rows**2 + cols**2) / (2.0 * width**2))
        weights += [window * m for m in (1.0, rows, cols, cols**2 - rows**2, 2.0 * rows * cols, rows**2 + cols**2)]
    return jnp.asarray(np.stack([w / np.linalg.norm(w) for w in weights]), dtype=jnp.float32)


def make_step(config: Config, phase: Phase, optimizer, static, image_size: int):
    num_classes = 2
    alpha_bars = sampling_schedule(schedule_spec(config)).alpha_bars
    moments = moment_weights(image_size)

    def loss_fn(params, images, labels, key):
        model = VPredictionModel(eqx.combine(params, static), alpha_bars, config.data_scale)
        t_key, noise_key, drop_key = jax.random.split(key, 3)
        n = images.shape[0]
        t = jax.random.randint(t_key, (n,), 0, alpha_bars.shape[0])
        noise = jax.random.normal(noise_key, images.shape)
        a = alpha_bars[t][:, None, None, None]
        noisy = jnp.sqrt(a) * images + jnp.sqrt(1.0 - a) * noise
        dropped = jax.random.bernoulli(drop_key, config.label_dropout, (n,))
        labels = jnp.where(dropped, num_classes, labels)
        t = t.astype(images.dtype)
        predicted = jax.vmap(model.network)(jax.vmap(model.network_input)(noisy, t), t, labels)
        error = predicted - jax.vmap(model.v_target)(images, noise, t)
        loss = jnp.mean(error**2)
        if phase.moment_loss_weight:
            moment_errors = jnp.einsum("nchw,khw->nk", error, moments)
            in_range = (t < config.moment_loss_max_step)[:, None]
            loss = loss + phase.moment_loss_weight * jnp.mean(jnp.where(in_range, moment_errors**2, 0.0))
        return loss

    @eqx.filter_jit(donate="all-except-first")
    def step(ema, params, opt_state, images, labels, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, images, labels, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: phase.ema_decay * e + (1.0 - phase.ema_decay) * p, ema, params)
        return ema, params, opt_state, loss

    return step


def train(config: Config, output: pathlib.Path) -> None:
    galaxies = load_galaxies("train")
    images, labels = np.asarray(galaxies.truth), np.asarray(galaxies.labels)
    key = jax.random.key(config.seed)
    model_key, key = jax.random.split(key)
    model = UNet(
        1,
        config.channels,
        blocks_per_level=config.blocks_per_level,
        num_classes=2,
        position_channels=config.position_channels,
        key=model_key,
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)

    devices = jax.devices()
    if config.batch_size % len(devices):
        raise ValueError(f"--batch-size must be a multiple of the {len(devices)} devices.")
    batch_sharding = NamedSharding(Mesh(np.array(devices), ("batch",)), PartitionSpec("batch"))

    print(f"UNet {config.channels}: {count_parameters(model):,} parameters; {len(images)} images "
          f"(pixel standard deviation {images.std():.3f}, data scale {config.data_scale}); "
          f"{len(devices)} {devices[0].platform} device(s)", flush=True)
    description = {
        "unet": {"in_channels": 1, "channels": list(config.channels), "blocks_per_level": config.blocks_per_level,
                 "num_classes": 2, "position_channels": config.position_channels},
        "schedule": schedule_spec(config),
        "parameterisation": {"kind": "v", "data_scale": config.data_scale},
        "parameters": count_parameters(model),
        "config": dataclasses.asdict(config),
        "device": f"{len(devices)} x {devices[0].device_kind}",
    }
    rng = np.random.default_rng(config.seed)
    log, start, done = [], time.time(), 0
    all_phases = phases(config)
    for number, phase in enumerate(all_phases):
        print(f"phase {number + 1} of {len(all_phases)}: {phase.name}, {phase.num_steps} steps", flush=True)
        optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(phase.learning_rate, weight_decay=1e-4))
        opt_state = optimizer.init(params)
        initial = jax.tree.map(jnp.copy, params)
        ema = jax.tree.map(jnp.copy, params)
        step = make_step(config, phase, optimizer, static, images.shape[-1])
        recent = []
        for i in range(1, phase.num_steps + 1):
            indices = rng.integers(0, len(images), config.batch_size)
            batch = jax.device_put((images[indices], labels[indices]), batch_sharding)
            key, step_key = jax.random.split(key)
            ema, params, opt_state, loss = step(ema, params, opt_state, *batch, step_key)
            recent.append(loss)
            done += 1
            if i % 50 == 0 or i == phase.num_steps:
                mean_loss = float(jnp.mean(jnp.stack(recent)))
                recent = []
                log.append({"step": done, "phase": number + 1, "loss": round(mean_loss, 5),
                            "seconds": round(time.time() - start, 1)})
                print(f"step {done:6d}  loss {mean_loss:.4f}  {time.time() - start:7.0f} s", flush=True)
            if done % config.checkpoint_every == 0 or i == phase.num_steps:
                kept = debiased(ema, initial, phase.ema_decay**i)
                progress = {"steps_done": done, "phases_done": number + (i == phase.num_steps),
                            "training_seconds": round(time.time() - start, 1), "log": log}
                save(eqx.combine(kept, static), output, {**description, **progress})
        params = kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Config()
    for field in dataclasses.fields(Config):
        name = "--" + field.name.replace("_", "-")
        value = getattr(defaults, field.name)
        if isinstance(value, tuple):
            parser.add_argument(name, type=int, nargs="+", default=value)
        elif isinstance(value, bool):
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(name, type=type(value), default=value)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = vars(parser.parse_args(argv))
    output = args.pop("output")
    args["channels"] = tuple(args["channels"])
    train(Config(**args), output)


if __name__ == "__main__":
    main()
