"""Train a candidate galaxy diffusion model by the recipe of Karras et al. (2022, EDM): the
redesign of the `astro` track's model (not yet the shipped one: `docs/models/galaxy.md`
records what each candidate scored against the shipped model).

    uv run python -m pretraining.galaxy_edm                        # 31 minutes on 2 CPU cores
    uv run python benchmarks/astro_quality.py --weights galaxy_edm.eqx
    uv run python -m pretraining.galaxy_edm --help                 # options

A class-conditional `course.nn.UNet` trained as the denoiser of Karras et al. (2022, EDM;
`course.nn.edm.EDMDenoiser`) on the noiseless, unconvolved galaxy images of
`course.data.galaxies` (the `truth` images: the prior of the reconstruction exercises):

- each training image is noised as `x0 + sigma * n` with `log sigma` normal
  (`--p-mean`, `--p-std`: EDM's log-normal noise levels, here in the images' units);
- the loss is EDM's: `lambda(sigma) |D(x; sigma) - x0|^2` with `lambda = 1 / c_out^2`,
  computed as the network's own squared error against its unit-variance target;
- with `--learned-loss-weight` (EDM2, Karras et al. 2024) a small linear layer on the noise
  level's embedding learns `u(sigma)`, the log of the loss's expected value there, and the
  loss becomes `loss / exp(u) + u`, which balances the noise levels as training goes;
- `sigma_data` is each pixel's root-mean-square over the training images (symmetrised over
  the square's 8 symmetries; `--per-pixel-sigma-data`) or their overall rms: per pixel, the
  nearly empty sky, a thousand times fainter than the galaxies' cores, is seen and predicted
  at unit variance, and the denoiser's output there can never stray far from the sky's own
  faint values.

Each galaxy is shown in one of the 8 orientations of the square at random (`--augment`; the
simulated galaxies' orientations are uniform). The label (disk- or bulge-dominated) is
dropped with probability `--label-dropout`, so that the same network is also the
unconditional model that classifier-free guidance needs. AdamW with a linear warm-up and a
cosine decay; an exponential moving average of the weights (`--ema-decay`, bias-corrected)
is what is kept. Every `--checkpoint-every` steps it is written to `--output` (an equinox
`.eqx` file holding the network and its `sigma_data`) with a `.json` next to it: the
hyperparameters, the training log and the file's SHA-256, which
`course.pretrained.load_galaxy_unet` checks. `docs/models/galaxy.md` (the model card) records
what each recipe scored on `benchmarks/astro_quality.py`.
"""

import dataclasses
import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course.data.galaxies import load_galaxies
from course.nn.edm import EDMDenoiser, network_time
from course.nn.embeddings import sinusoidal_embedding
from course.nn.unet import UNet, count_parameters
from pretraining.galaxy_unet import config_parser, debiased, dihedral_copies, save, symmetrised_pixel_rms

DEFAULT_OUTPUT = pathlib.Path("galaxy_edm.eqx")
MIN_SIGMA_DATA = 1e-4  # the smallest pixel rms that sigma_data is set to
NUM_CLASSES = 2


@dataclasses.dataclass
class Config:
    steps: int = 2400
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    ema_decay: float = 0.999
    label_dropout: float = 0.15
    p_mean: float = -2.0
    p_std: float = 1.6
    per_pixel_sigma_data: bool = True
    learned_loss_weight: bool = True
    channels: tuple[int, ...] = (16, 32, 64)
    blocks_per_level: int = 1
    attention: bool = False
    augment: bool = True
    seed: int = 0
    checkpoint_every: int = 500


class LossWeight(eqx.Module):
    """EDM2's `u(sigma)`: the log of the expected loss at noise level `sigma`, learned."""

    linear: eqx.nn.Linear
    embedding_dim: int = eqx.field(static=True)

    def __init__(self, embedding_dim: int = 32, *, key: PRNGKeyArray):
        self.embedding_dim = embedding_dim
        self.linear = eqx.nn.Linear(embedding_dim, "scalar", key=key)

    def __call__(self, sigma: Float[Array, ""]) -> Float[Array, ""]:
        return self.linear(sinusoidal_embedding(network_time(sigma), self.embedding_dim))


def sigma_data_of(images: Float[np.ndarray, "n c h w"], per_pixel: bool) -> Float[Array, "*pixels"]:
    """The images' root-mean-square, one per pixel (averaged over the square's 8 symmetries,
    which removes most of the sampling noise, and floored at `MIN_SIGMA_DATA`) or overall."""
    if not per_pixel:
        return jnp.asarray(np.sqrt(np.mean(np.asarray(images, np.float64) ** 2)), jnp.float32)
    return jnp.asarray(np.maximum(symmetrised_pixel_rms(images), MIN_SIGMA_DATA), jnp.float32)


def edm_loss(
    denoiser: EDMDenoiser,
    x0: Float[Array, "c h w"],
    sigma: Float[Array, ""],
    noise: Float[Array, "c h w"],
    y: Int[Array, ""] | None = None,
) -> Float[Array, ""]:
    """EDM's `lambda(sigma) |D(x0 + sigma n; sigma) - x0|^2`, mean over pixels, computed in
    the network's units (its output against its unit-variance target), where nothing is
    divided by the tiny `c_out` of the sky's pixels."""
    c_skip, c_out, c_in = denoiser.coefficients(sigma)
    x = x0 + sigma * noise
    target = (x0 - c_skip * x) / c_out
    return jnp.mean((denoiser.network(c_in * x, network_time(sigma), y) - target) ** 2)


def learning_rate_schedule(config: Config) -> optax.Schedule:
    """Linear warm-up to `learning_rate`, then cosine decay to a twentieth of it."""
    return optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps, config.steps,
                                              end_value=config.learning_rate / 20)


def optimizer(config: Config) -> optax.GradientTransformation:
    """AdamW (weight decay 1e-4) after clipping the gradient's global norm to 1."""
    return optax.chain(optax.clip_by_global_norm(1.0),
                       optax.adamw(learning_rate_schedule(config), weight_decay=1e-4))


def make_step(config: Config, static, sigma_data):
    transform = optimizer(config)

    def loss_fn(params, images, labels, key):
        network, loss_weight = eqx.combine(params, static)
        denoiser = EDMDenoiser(network, sigma_data)
        sigma_key, noise_key, drop_key = jax.random.split(key, 3)
        n = images.shape[0]
        sigmas = jnp.exp(config.p_mean + config.p_std * jax.random.normal(sigma_key, (n,)))
        noise = jax.random.normal(noise_key, images.shape)
        labels = jnp.where(jax.random.bernoulli(drop_key, config.label_dropout, (n,)), NUM_CLASSES, labels)
        losses = jax.vmap(lambda *a: edm_loss(denoiser, *a))(images, sigmas, noise, labels)
        if loss_weight is None:
            return jnp.mean(losses), jnp.mean(losses)
        u = jax.vmap(loss_weight)(sigmas)
        return jnp.mean(losses / jnp.exp(u) + u), jnp.mean(losses)

    @eqx.filter_jit(donate="all-except-first")
    def step(ema, params, opt_state, images, labels, key):
        (_, loss), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, images, labels, key)
        with jax.numpy_dtype_promotion("standard"):  # optax's schedule mixes its int count with floats
            updates, opt_state = transform.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: config.ema_decay * e + (1.0 - config.ema_decay) * p, ema, params)
        return ema, params, opt_state, loss

    return step


def architecture(config: Config) -> dict:
    return {"in_channels": 1, "channels": list(config.channels), "blocks_per_level": config.blocks_per_level,
            "num_classes": NUM_CLASSES, "attention": config.attention}


def train(config: Config, output: pathlib.Path) -> None:
    galaxies = load_galaxies("train")
    images, labels = np.asarray(galaxies.truth), np.asarray(galaxies.labels)
    key = jax.random.key(config.seed)
    model_key, weight_key, key = jax.random.split(key, 3)
    network = UNet(1, config.channels, blocks_per_level=config.blocks_per_level, num_classes=NUM_CLASSES,
                   attention=config.attention, key=model_key)
    loss_weight = LossWeight(key=weight_key) if config.learned_loss_weight else None
    sigma_data = sigma_data_of(images, config.per_pixel_sigma_data)
    params, static = eqx.partition((network, loss_weight), eqx.is_inexact_array)
    if config.augment:
        images, labels = dihedral_copies(images), np.tile(labels, 8)
    print(f"UNet {config.channels}: {count_parameters(network):,} parameters; {len(images)} images"
          f"{' (8 symmetries of each)' if config.augment else ''}; sigma_data {float(sigma_data.min()):.3g} to "
          f"{float(sigma_data.max()):.3g}; {jax.devices()[0].device_kind}", flush=True)
    description = {
        "unet": architecture(config),
        "parameterisation": {"kind": "edm", "sigma_data_shape": list(sigma_data.shape)},
        "schedule": {"kind": "cosine", "num_steps": 1000},
        "parameters": count_parameters(network),
        "config": dataclasses.asdict(config),
        "device": f"{len(jax.devices())} x {jax.devices()[0].device_kind}",
    }
    rng = np.random.default_rng(config.seed)
    step = make_step(config, static, sigma_data)
    opt_state = optimizer(config).init(params)
    initial = jax.tree.map(jnp.copy, params)
    ema = jax.tree.map(jnp.copy, params)
    log, recent, start = [], [], time.time()
    for i in range(1, config.steps + 1):
        indices = rng.integers(0, len(images), config.batch_size)
        key, step_key = jax.random.split(key)
        ema, params, opt_state, loss = step(ema, params, opt_state, jnp.asarray(images[indices]),
                                            jnp.asarray(labels[indices]), step_key)
        recent.append(loss)
        if i % 50 == 0 or i == config.steps:
            mean_loss = float(jnp.mean(jnp.stack(recent)))
            recent = []
            log.append({"step": i, "loss": round(mean_loss, 5), "seconds": round(time.time() - start, 1)})
            print(f"step {i:6d}  loss {mean_loss:.4f}  {time.time() - start:7.0f} s", flush=True)
        if i % config.checkpoint_every == 0 or i == config.steps:
            kept_network, _ = eqx.combine(debiased(ema, initial, config.ema_decay**i), static)
            progress = {"steps_done": i, "training_seconds": round(time.time() - start, 1), "log": log}
            save((kept_network, sigma_data), output, {**description, **progress})


def main(argv: list[str] | None = None) -> None:
    parser = config_parser(Config, __doc__.split("\n\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = vars(parser.parse_args(argv))
    output = args.pop("output")
    args["channels"] = tuple(args["channels"])
    train(Config(**args), output)


if __name__ == "__main__":
    main()
