"""Pretrained models shipped with the course, loaded with a checksum check, and the scripts
that trained them (each retrains its model with one command; the protein language model's
loader is `course.pretrained.protein_lm`).

`load_galaxy_unet()` returns the galaxy diffusion model of the `astro` track: a
class-conditional noise predictor for noisy 32x32 galaxy images (the `truth` images of
`course.data.galaxies`; the shipped one is a `course.nn.UNet` trained by v-prediction,
wrapped by `course.nn.v_prediction.VPredictionModel`), and its DDPM noise schedule. A model
trained as an EDM denoiser (`pretraining.galaxy_edm`) loads the same way, wrapped by
`course.nn.edm.NoisePredictor`. Both also give their denoiser, which `sample_galaxies`
samples in a few Heun steps (`course.samplers`). Retrain the shipped model with

    uv run python -m pretraining.galaxy_unet
"""

import hashlib
import json
import pathlib
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import samplers
from course.data.galaxies import STAMP_SIZE
from course.nn.edm import EDMDenoiser, NoisePredictor
from course.nn.unet import UNet
from course.nn.v_prediction import VPredictionModel
from course.schedules import DDPMSchedule, noise_level

_HERE = pathlib.Path(__file__).parent
GALAXY_UNET_PATH = _HERE / "galaxy_unet.eqx"
RETRAIN_COMMAND = "uv run python -m pretraining.galaxy_unet"


class ChecksumError(RuntimeError):
    """The weights file differs from the one its metadata describes."""


class PretrainedDiffusion(NamedTuple):
    """A trained noise predictor `model(x_t, t, y) -> eps` for one image, the schedule to
    sample it with, `metadata` (the hyperparameters and the training log) and the same model
    as a denoiser `denoiser(x, sigma, y) -> x0` of images noised as `x0 + sigma * n` (EDM's
    view, for the Heun sampler; None for a plain noise-predicting network).

    The schedule is the training schedule (`metadata["schedule"]`) without its last, nearly
    pure-noise steps: the cosine schedule ends with `alpha_bar` near 1e-9, where the
    estimate `x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)` multiplies any error
    of the network by 20,000. It stops at the noise level `max_noise_level` (20 by
    default: over 200 times the pixel standard deviation of the galaxies), where `x_t` is still
    pure noise for all practical purposes. Its steps are the training steps, so the
    network needs no change.
    """

    model: UNet | VPredictionModel | NoisePredictor
    schedule: DDPMSchedule
    metadata: dict
    denoiser: Callable | None = None


DEFAULT_MAX_NOISE_LEVEL = 20.0
SAMPLER_STEPS = 20  # Heun steps of `sample_galaxies`: 39 network evaluations
# Its stochastic churn (EDM's S_churn; 10 raises every level by the cap, sqrt(2) - 1): on the shipped
# model it brings flux and peak from 2.56x and 2.48x the floor to 0.93x and 1.06x (docs/models/galaxy.md).
SAMPLER_CHURN = 10.0
SAMPLER_SIGMA_MIN = 5e-4  # its lowest noise level before the last step to 0 (image units; EDM: sigma_data / 250)


def sampling_schedule(spec: dict) -> DDPMSchedule:
    """The training schedule, cut after the first step whose noise level
    `sqrt((1 - alpha_bar) / alpha_bar)` reaches `max_noise_level`."""
    if spec["kind"] == "cosine":
        schedule = DDPMSchedule.cosine(spec["num_steps"])
    elif spec["kind"] == "linear":
        schedule = DDPMSchedule.linear(spec["num_steps"])
    else:
        raise ValueError(f"Unknown schedule {spec['kind']!r}.")
    levels = noise_level(schedule.alpha_bars)
    max_level = spec.get("max_noise_level", DEFAULT_MAX_NOISE_LEVEL)
    num_steps = min(int(jnp.searchsorted(levels, max_level)) + 1, schedule.num_steps)
    return DDPMSchedule(schedule.betas[:num_steps])


def load_galaxy_unet(path: str | pathlib.Path = GALAXY_UNET_PATH) -> PretrainedDiffusion:
    """Load the shipped galaxy diffusion model (or the one at `path`, with its `.json`
    metadata next to it), after checking the SHA-256 of the weights file."""
    path = pathlib.Path(path)
    metadata_path = path.with_suffix(".json")
    if not path.exists() or not metadata_path.exists():
        raise FileNotFoundError(
            f"No pretrained weights at {path} (with {metadata_path.name}). Restore them from the course "
            f"repository (`git checkout -- {path.name}`) or retrain them: {RETRAIN_COMMAND}"
        )
    metadata = json.loads(metadata_path.read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != metadata["sha256"]:
        raise ChecksumError(
            f"{path.name} is damaged or not the file its metadata describes: SHA-256 {digest[:12]}..., "
            f"expected {metadata['sha256'][:12]}.... If you use git-lfs or downloaded the repository as an "
            f"archive, fetch the file again (`git checkout -- {path.name}`), or retrain it: {RETRAIN_COMMAND}"
        )
    spec = metadata["unet"]
    # Shapes only: initialising a million parameters at random would compile a program per weight.
    skeleton = eqx.filter_eval_shape(
        UNet,
        spec["in_channels"],
        tuple(spec["channels"]),
        blocks_per_level=spec["blocks_per_level"],
        num_classes=spec["num_classes"],
        embedding_dim=spec.get("embedding_dim", 128),
        groups=spec.get("groups", 8),
        position_channels=spec.get("position_channels", False),
        attention=spec.get("attention", False),
        key=jax.random.key(0),
    )
    schedule = sampling_schedule(metadata["schedule"])
    parameterisation = metadata.get("parameterisation", {"kind": "epsilon"})
    if parameterisation["kind"] == "edm":
        sigma_data = jax.ShapeDtypeStruct(tuple(parameterisation["sigma_data_shape"]), jnp.float32)
        network, sigma_data = eqx.tree_deserialise_leaves(path, (skeleton, sigma_data))
        denoiser = EDMDenoiser(network, sigma_data)
        return PretrainedDiffusion(NoisePredictor(denoiser, schedule.alpha_bars), schedule, metadata, denoiser)
    if parameterisation["kind"] == "v" and "data_scale" in parameterisation:
        # Written by earlier versions of the training script: one data scale for every pixel.
        network = eqx.tree_deserialise_leaves(path, skeleton)
        model = VPredictionModel(network, schedule.alpha_bars, parameterisation["data_scale"])
        return PretrainedDiffusion(model, schedule, metadata, model.denoise)
    if parameterisation["kind"] == "v":
        # The file holds the network and its data scale, one per pixel.
        data_scale = jax.ShapeDtypeStruct(tuple(parameterisation["data_scale_shape"]), jnp.float32)
        network, data_scale = eqx.tree_deserialise_leaves(path, (skeleton, data_scale))
        model = VPredictionModel(network, schedule.alpha_bars, data_scale)
        return PretrainedDiffusion(model, schedule, metadata, model.denoise)
    if parameterisation["kind"] == "epsilon":
        return PretrainedDiffusion(eqx.tree_deserialise_leaves(path, skeleton), schedule, metadata)
    raise ValueError(f"Unknown parameterisation {parameterisation['kind']!r} in {metadata_path.name}.")


def lowest_noise_level(pretrained: PretrainedDiffusion) -> float:
    """The noise level (image units) where `sample_galaxies` takes its last step to 0: EDM's
    `SAMPLER_SIGMA_MIN` for an EDM denoiser, trained at any level; for a model trained on
    its schedule's steps, the first step's, below which it never saw an image."""
    if pretrained.metadata.get("parameterisation", {}).get("kind") == "edm":
        return SAMPLER_SIGMA_MIN
    return float(noise_level(pretrained.schedule.alpha_bars[0]))


def sample_galaxies(
    pretrained: PretrainedDiffusion,
    key: PRNGKeyArray,
    labels: Int[Array, " n"],
    *,
    num_steps: int = SAMPLER_STEPS,
    churn: float = SAMPLER_CHURN,
) -> Float[Array, "n 1 h w"]:
    """Galaxies of the given class labels (2: no label), one per label, sampled from the
    model's denoiser by EDM's Heun sampler (`course.samplers.heun_sample`, `2 * num_steps -
    1` network evaluations, fresh noise from `key` at each step unless `churn=0`) from the
    sampling schedule's highest noise level down to 0."""
    if pretrained.denoiser is None:
        raise ValueError("This model (a network that predicts the noise) is a noise predictor only: sample it "
                         "with a DDPM or DDIM sampler on its schedule (the astro track's "
                         "`sample`), or train an EDM denoiser with `uv run python -m pretraining.galaxy_edm`.")
    sigma_max = pretrained.metadata["schedule"].get("max_noise_level", DEFAULT_MAX_NOISE_LEVEL)
    sigmas = samplers.karras_sigmas(num_steps, lowest_noise_level(pretrained), sigma_max)
    labels = jnp.asarray(labels)
    return samplers.heun_sample(pretrained.denoiser, key, labels.shape[0], (1, STAMP_SIZE, STAMP_SIZE), sigmas, labels,
                                churn=churn)
