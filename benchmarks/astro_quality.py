"""Quality and speed of the shipped galaxy diffusion model (the `astro` track), on held-out galaxies.

1. Generation. Sample 1,000 galaxies from `course.pretrained.load_galaxy_unet()` (or the
   model of `--weights`) with the reference sampler of `solutions/astro/03_sampling.py`
   (DDIM with eta = 1, 300 steps: about twenty minutes for 1,000 images on two CPU cores)
   for a noise predictor, or the library's
   Heun sampler (`course.pretrained.sample_galaxies`: EDM's 2nd-order sampler, 20 steps,
   39 network evaluations, stochastic churn 10; `--sampler ddim` samples its noise
   predictor by DDIM instead), the default for every model with a denoiser, the shipped
   v-prediction one included (from its lowest trained noise level), each
   with a class label drawn at random from the training set's labels, so that the samples
   follow p(x) = sum_c p(c) p(x | c) (`--unconditional` samples with the label dropped
   instead), and compare four morphology statistics
   (`course.morphology`: total flux, half-light radius, ellipticity, peak pixel) with
   1,000 held-out test galaxies by the Wasserstein-1 distance of their distributions.
   Printed next to it: the floor (as many other held-out galaxies as samples, against the
   same 1,000: what a perfect model scores) and a Gaussian-pixel baseline (images drawn
   from a Gaussian with the per-pixel mean and covariance of the training set), with the
   ratio to the floor. Target: within 2x the floor on every statistic. Then each
   statistic's mean, standard deviation and 5th and 95th percentiles for the samples and
   the data, the distances of the ellipticity's two components (`shape_components`), with
   DDIM the step of the sampling at which the samples' shapes part from the data's
   (`shape_trace`), and the light in the samples' outskirts and sky (`outskirts`).
   `--samples 200` screens a candidate cheaply.
2. Reconstruction. Blur 100 held-out galaxies with the PSF, add the survey's sky noise,
   and reconstruct them by diffusion posterior sampling (`deconvolve` of
   `solutions/astro/04_reconstruction.py`), Wiener filtering and Richardson-Lucy
   (scikit-image). Printed: mean PSNR against the truth, and the reduced chi-square of the
   residual `|y - A x|^2 / (N sigma^2)` (near 1 when the reconstruction explains the data
   to the noise level). Target: the prior wins on PSNR, chi-square near 1.
3. Denoiser calibration (a diagnosis, no target). Noise 1,000 held-out galaxies to step t,
   denoise them once (Tweedie's estimate, given their class labels, as the samples are)
   and regress the truth's weighted quadrupole `(Q11 - Q22, 2 Q12)` (a round Gaussian
   weight of 3 pixels about the stamp centre: the elongation that `morphology.ellipticity`
   measures) on the estimate's. The quadrupole is linear in the image, so for the exact
   posterior mean E[x0 | x_t] the slope is 1 at every step; above 1, the denoised galaxies
   are rounder than they should be; below 1, their shapes carry errors unrelated to the
   truth's (at the middle noise levels, where the samples' shapes are decided, such errors
   give round galaxies a shape). The same for the weighted size `Q11 + Q22`. Each slope
   comes with a standard error from resampling the galaxies: the slopes are noisy at the
   higher steps, where the estimates' shapes vary little (with 500 galaxies, five noise
   draws gave 0.89 to 1.00 at step 100 and 0.69 to 0.88 at step 300). Then, at the
   lowest steps (2, 5, 20), the same for the noise itself in rings 1.5 to 6 pixels from
   the stamp centre (`noise_calibration`): the true noise regressed on the predicted one
   (slope 1 for the posterior mean; above 1, the network leaves noise in the galaxies'
   cores that it could have told apart; the shipped model's is 1.9 at step 2), and their
   correlation.
4. Sampling speed (models with a denoiser: EDM-trained or v-prediction, as the shipped one).
   `course.pretrained.sample_galaxies`: 16 galaxies
   in a first call (compilation included) and 1,000 in batches. Targets: at most 40 network evaluations
   per galaxy, 16 galaxies in 10 s, 1,000 in 150 s.
5. Shape recovery (a diagnosis, no target). Noise 1,000 held-out galaxies to one of the
   lowest steps (2, 5, 10 of the 1,000: noise 0.012 to 0.027), sample them back one step
   at a time, and compare their ellipticities with the same galaxies' truth, over the
   floor (`shape_recovery`). The exact model gives back galaxies distributed as the data
   from any step; a ratio above 1 is what the last few steps of every sampling do to the
   shapes, whatever the chains bring to them.

    uv run python benchmarks/astro_quality.py [--heun-steps 20] [--churn 10] [--samples 1000]
                                              [--sampler ddim --steps 300 --eta 1 --deterministic-from STEP]
                                              [--dps-steps 100] [--unconditional]
                                              [--skip-generation] [--skip-reconstruction]
                                              [--skip-speed] [--skip-diagnoses]
                                              [--weights galaxy_unet.eqx]

`--weights` scores another model written by `pretraining.galaxy_unet --output` or
`pretraining.galaxy_edm --output`
(the `.json` next to it) instead of the shipped one.
`--deterministic-from STEP` (with `--sampler ddim`) takes the sampling's steps at or below
diffusion step STEP without fresh noise (eta 0). `docs/models/galaxy.md` records what each
candidate model scored.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import skimage.restoration

from benchmarks.results import Table, save
from course import morphology, pretrained, samplers
from course.data import galaxies as galaxy_data
from grader import paths
from grader.loader import load_script

STATISTICS = {
    "flux": morphology.total_flux,
    "half-light radius": morphology.half_light_radius,
    "ellipticity": morphology.ellipticity,
    "peak": morphology.peak,
}
NUM_IMAGES = 1000
ellipticities = jax.jit(jax.vmap(morphology.ellipticity))
NUM_RECONSTRUCTIONS = 100
MAX_RATIO = 2.0
NO_LABEL = 2  # the class label of the network's unconditional branch
SPEED_IMAGES = 16
SPEED_TARGETS = {"network evaluations": 40, f"{SPEED_IMAGES} galaxies (s)": 10.0, f"{NUM_IMAGES} galaxies (s)": 150.0}


def sampler_description(args) -> str:
    if args.sampler == "heun":
        churn = f", churn {args.churn:g}" if args.churn else ""
        evaluations = samplers.network_evaluations(args.heun_steps)
        return f"Heun {args.heun_steps} steps ({evaluations} network evaluations{churn})"
    deterministic = "" if args.deterministic_from < 0 else f" (0 at or below step {args.deterministic_from})"
    return f"DDIM {args.steps} steps, eta {args.eta}{deterministic}"


def sampling_speed(args, shipped, train) -> tuple[bool, Table]:
    """Wall time of `course.pretrained.sample_galaxies`: 16 galaxies in a first call
    (compilation included, as a student's first sampling cell), the same again, and
    1,000 galaxies in batches of `--batch`."""
    nfe = samplers.network_evaluations(args.heun_steps)
    labels = train.labels[:NUM_IMAGES]
    print(f"== Sampling speed: Heun {args.heun_steps} steps, {nfe} network evaluations per galaxy ==")
    timings = {"network evaluations": nfe}
    for name in (f"{SPEED_IMAGES} galaxies (s)", f"{SPEED_IMAGES} galaxies, again (s)"):
        start = time.perf_counter()
        pretrained.sample_galaxies(shipped, jax.random.key(args.seed), labels[:SPEED_IMAGES],
                                   num_steps=args.heun_steps, churn=args.churn).block_until_ready()
        timings[name] = time.perf_counter() - start
    start = time.perf_counter()
    for i, key in enumerate(jax.random.split(jax.random.key(args.seed), NUM_IMAGES // args.batch)):
        pretrained.sample_galaxies(shipped, key, labels[i * args.batch : (i + 1) * args.batch],
                                   num_steps=args.heun_steps, churn=args.churn).block_until_ready()
    timings[f"{NUM_IMAGES} galaxies (s)"] = time.perf_counter() - start
    rows, all_ok = [], True
    for name, value in timings.items():
        target = SPEED_TARGETS.get(name)
        ok = target is None or value <= target
        all_ok &= ok
        verdict = "" if target is None else f"{'ok' if ok else 'MISSED'} (<= {target:g})"
        print(f"{name:>28} {value:9.2f}  {verdict}")
        rows.append([name, value, "" if target is None else target, verdict.split(" ")[0].lower()])
    print(f"speed target {'met' if all_ok else 'missed'}")
    return all_ok, Table("Sampling speed", ["measure", "value", "target", "verdict"], rows,
                         note=f"`course.pretrained.sample_galaxies`, batches of {args.batch}; first call includes "
                              "compilation")


def statistics_of(images) -> dict[str, np.ndarray]:
    return {name: np.asarray(jax.jit(jax.vmap(fn))(images)) for name, fn in STATISTICS.items()}


def gaussian_pixel_baseline(train_images, key, num_images):
    """Images drawn from N(mean, covariance) of the training pixels."""
    flat = np.asarray(train_images, np.float64).reshape(train_images.shape[0], -1)
    mean, covariance = flat.mean(0), np.cov(flat, rowvar=False)
    draws = jax.random.multivariate_normal(key, jnp.asarray(mean, jnp.float32), jnp.asarray(covariance, jnp.float32),
                                           (num_images,), method="svd")
    return draws.reshape((num_images,) + train_images.shape[1:])


def generation(args, shipped, noising, sampling, recon, train, test) -> tuple[bool, list[Table]]:
    labels = None if args.unconditional else jax.random.choice(jax.random.key(args.seed + 5), train.labels,
                                                                (args.samples,))
    how = sampler_description(args)
    print(f"== Generation: {args.samples} samples, {how}, "
          f"{'no class label' if labels is None else 'class labels drawn from the training set'} ==")
    start = time.perf_counter()
    samples, traced = [], []
    for i, key in enumerate(jax.random.split(jax.random.key(args.seed), args.samples // args.batch)):
        batch_labels = None if labels is None else labels[i * args.batch : (i + 1) * args.batch]
        if args.sampler == "heun":
            batch_labels = jnp.full(args.batch, NO_LABEL) if batch_labels is None else batch_labels
            final = pretrained.sample_galaxies(shipped, key, batch_labels, num_steps=args.heun_steps, churn=args.churn)
        else:
            final, states = sample_keeping_states(sampling, shipped, key, args.batch, args.steps, args.eta,
                                                  batch_labels, args.deterministic_from)
            traced.append(states)
        samples.append(final.block_until_ready())
        print(f"  {(i + 1) * args.batch} images, {time.perf_counter() - start:.0f} s", flush=True)
    samples = jnp.concatenate(samples)
    seconds = time.perf_counter() - start
    print(f"sampling: {seconds:.0f} s ({seconds / args.samples * 1000:.0f} ms per image)")

    held_out, other = test.truth[:NUM_IMAGES], test.truth[NUM_IMAGES : NUM_IMAGES + args.samples]
    gaussian = gaussian_pixel_baseline(train.truth, jax.random.key(args.seed + 1), args.samples)
    reference = statistics_of(held_out)
    scores = {name: statistics_of(images) for name, images in
              [("model", samples), ("floor", other), ("gaussian", gaussian)]}
    print(f"{'statistic':>18} {'model W1':>10} {'floor W1':>10} {'gaussian W1':>12} {'model/floor':>12} "
          f"{'gaussian/floor':>15}  target")
    all_ok, distances, spreads = True, [], []
    for name in STATISTICS:
        w = {k: morphology.wasserstein_1d(v[name], reference[name]) for k, v in scores.items()}
        ratio = w["model"] / w["floor"]
        ok = ratio <= MAX_RATIO
        all_ok &= ok
        print(f"{name:>18} {w['model']:10.4g} {w['floor']:10.4g} {w['gaussian']:12.4g} {ratio:12.2f} "
              f"{w['gaussian'] / w['floor']:15.2f}  {'ok' if ok else 'MISSED'} (<= {MAX_RATIO}x)")
        distances.append([name, w["model"], w["floor"], w["gaussian"], ratio, w["gaussian"] / w["floor"],
                          "ok" if ok else "missed"])
    print(f"generation target {'met' if all_ok else 'missed'}")
    print(f"{'statistic':>18} {'model mean':>11} {'data mean':>10} {'model sd':>9} {'data sd':>8} "
          f"{'model 5%':>9} {'data 5%':>8} {'model 95%':>10} {'data 95%':>9}")
    for name in STATISTICS:
        model, data = scores["model"][name], reference[name]
        (model_low, model_high), (data_low, data_high) = np.percentile(model, [5, 95]), np.percentile(data, [5, 95])
        print(f"{name:>18} {model.mean():11.4g} {data.mean():10.4g} {model.std():9.4g} {data.std():8.4g} "
              f"{model_low:9.4g} {data_low:8.4g} {model_high:10.4g} {data_high:9.4g}")
        spreads.append([name, model.mean(), data.mean(), model.std(), data.std(), model_low, data_low, model_high,
                        data_high])
    components = shape_components(samples, held_out, other)
    if traced:  # the DDIM chains' states
        states = {t: jnp.concatenate([batch[t] for batch in traced]) for t in traced[0]}
        trace = [shape_trace(states, labels, shipped, noising, sampling, recon, test)]
    else:
        trace = []
    light = outskirts(samples, held_out)
    for name, (model, data) in light.items():
        print(f"{name}: model {model:.4g}, data {data:.4g}")
    compared = f"{args.samples} samples against {NUM_IMAGES} held-out galaxies"
    return all_ok, [
        Table("Generation: morphology statistics, Wasserstein-1 distance to held-out galaxies",
              ["statistic", "model W1", "floor W1", "gaussian W1", "model / floor", "gaussian / floor", "target"],
              distances, note=f"{compared}; {how}, {seconds:.0f} s; "
                              f"floor: {args.samples} other held-out galaxies; target: model / floor <= {MAX_RATIO}"),
        Table("Generation: the statistics' distributions",
              ["statistic", "model mean", "data mean", "model sd", "data sd", "model 5%", "data 5%", "model 95%",
               "data 95%"], spreads, note=compared),
        components, *trace,
        Table("Generation: the light in the outskirts and the sky", ["measure", "model", "data"],
              [[name, model, data] for name, (model, data) in light.items()], note=compared),
    ]


def shape_components(samples, held_out, other) -> Table:
    """The two components of the ellipticity (`morphology.ellipticity_components`) one by
    one: their distances over the floor and their spreads. With components as close as
    the other statistics but a modulus far off, the samples' shapes have the right
    spread but the wrong distribution in the plane: a two-dimensional Gaussian of
    standard deviation s in each component, say, has a Rayleigh modulus with 5th and 95th
    percentiles 0.32 s and 2.45 s, where the simulated galaxies pile up near round and
    reach further out."""
    components = jax.jit(jax.vmap(morphology.ellipticity_components))
    model, data, floor = (np.asarray(components(images)) for images in (samples, held_out, other))
    rows = []
    for i, name in enumerate(["e1", "e2"]):
        ratio = morphology.wasserstein_1d(model[:, i], data[:, i]) / morphology.wasserstein_1d(floor[:, i], data[:, i])
        print(f"ellipticity component {name}: model/floor W1 {ratio:.2f}, standard deviation model "
              f"{model[:, i].std():.4f}, data {data[:, i].std():.4f}")
        rows.append([name, ratio, model[:, i].std(), data[:, i].std()])
    return Table("Generation: the ellipticity's components", ["component", "model / floor W1", "model sd", "data sd"],
                 rows)


def denoised_once(shipped, sampling, x_t, t, labels):
    """Tweedie's estimate of the clean images from `x_t` at step `t`: one denoising step."""
    return sampling.predict_x0(shipped.schedule, x_t, t, sampling.predict_noise(shipped.model, x_t, t, labels))


def noised(shipped, noising, images, t, key):
    """`images` noised to step `t` by the reference forward process, the noise drawn from `key`."""
    noise = jax.random.normal(key, images.shape)
    return noising.forward_noise(shipped.schedule, images, jnp.full(images.shape[0], t), noise)


def noised_and_denoised(shipped, noising, sampling, images, labels, t, key):
    """`images` `noised` to step `t`, then `denoised_once`."""
    return denoised_once(shipped, sampling, noised(shipped, noising, images, t, key), t, labels)


TRACED_STEPS = (300, 200, 100, 50, 20)


def sample_keeping_states(sampling, shipped, key, num_images, num_steps, eta, labels, deterministic_from=-1):
    """`sampling.sample(...)`, step for step and key for key (the same images), also
    returning the state reached just before the first step at or below each of
    `TRACED_STEPS`, keyed by that step. The steps at or below `deterministic_from` (-1:
    none) are taken with eta 0."""
    schedule = shipped.schedule
    init_key, loop_key = jax.random.split(key)
    x = jax.random.normal(init_key, (num_images, 1, galaxy_data.STAMP_SIZE, galaxy_data.STAMP_SIZE))
    ts = jnp.linspace(schedule.num_steps - 1, 0, num_steps).round().astype(jnp.int32)
    next_ts = jnp.concatenate([ts[1:], jnp.array([-1], dtype=jnp.int32)])
    first_at_or_below = {int(np.argmax(np.asarray(ts) <= t)) for t in TRACED_STEPS}
    keep = {i: int(ts[i]) for i in first_at_or_below}
    etas = [0.0 if t <= deterministic_from else eta for t in np.asarray(ts)]
    step, states = jax.jit(sampling.ddim_step), {}
    for i, step_key in enumerate(jax.random.split(loop_key, num_steps)):
        if i in keep:
            states[keep[i]] = x
        eps = sampling.predict_noise(shipped.model, x, ts[i], labels)
        x = step(schedule, x, ts[i], next_ts[i], eps, jax.random.normal(step_key, x.shape), etas[i])
    return x, states


def shape_trace(states, labels, shipped, noising, sampling, recon, test) -> Table:
    """Where the samples' shapes part from the data's. At each traced step t, denoise the
    sampling chains' states in one step (Tweedie), and the held-out galaxies noised to t,
    and compare the ellipticities of the two sets of estimates (W1 over the floor: 1,000
    other held-out galaxies, noised and denoised alike). For a perfect model the chains'
    states are distributed as the noised data at every step, and the ratio stays near 1."""

    def held_out_estimates(part: slice, t):
        part_labels = None if labels is None else test.labels[part]
        key = jax.random.fold_in(jax.random.key(part.start), t)
        return noised_and_denoised(shipped, noising, sampling, test.truth[part], part_labels, t, key)

    print("ellipticity of the one-step denoised sampling states against the noised held-out galaxies':")
    rows = []
    for t, x_t in sorted(states.items(), reverse=True):
        t = jnp.asarray(t)
        model = np.asarray(ellipticities(denoised_once(shipped, sampling, x_t, t, labels)))
        data, floor = (np.asarray(ellipticities(held_out_estimates(slice(k * NUM_IMAGES, (k + 1) * NUM_IMAGES), t)))
                       for k in (0, 1))
        ratio = morphology.wasserstein_1d(model, data) / morphology.wasserstein_1d(floor, data)
        noise = float(recon.noise_level(shipped.schedule, t))
        print(f"  step {int(t):3d} (noise {noise:.3f}): model/floor W1 {ratio:.2f}")
        rows.append([int(t), noise, ratio])
    return Table("Generation: where the samples' shapes part from the data's", ["step", "noise", "model / floor W1"],
                 rows, note="ellipticity of the one-step denoised sampling states against the noised held-out "
                            "galaxies'")


OUTER_RADIUS = 8.0  # pixels from the stamp centre: a galaxy's faint outskirts
SKY_RADIUS = 13.0  # pixels: beyond it the stamps hold almost no galaxy light


def offsets_from_centre(size: int) -> np.ndarray:
    """Each pixel's `(row, column)` offset from the centre of a `size` x `size` stamp, in
    pixels: shape `(2, size, size)`."""
    return np.indices((size, size)) - (size - 1) / 2


def distance_from_centre(size: int) -> np.ndarray:
    """Each pixel's distance from the centre of a `size` x `size` stamp, in pixels."""
    return np.hypot(*offsets_from_centre(size))


def outskirts(samples, held_out) -> dict[str, tuple[float, float]]:
    """The median flux beyond `OUTER_RADIUS` and the pixel standard deviation beyond
    `SKY_RADIUS` of the samples and the held-out galaxies: too little of the first and the
    galaxies' wings are missing; too much of the second and the sky is noisy, which
    inflates the half-light radius (measured on the positive pixels)."""
    radius = distance_from_centre(held_out.shape[-1])
    figures = {}
    for name, threshold, measure in [
        (f"median flux beyond {OUTER_RADIUS:g} px", OUTER_RADIUS, lambda pixels: np.median(pixels.sum(-1))),
        (f"pixel sd beyond {SKY_RADIUS:g} px (sky)", SKY_RADIUS, lambda pixels: pixels.std()),
    ]:
        figures[name] = tuple(float(measure(np.asarray(images)[:, 0][:, radius > threshold]))
                              for images in (samples, held_out))
    return figures


def reconstruction(args, shipped, recon, test) -> tuple[bool, Table]:
    print(f"== Reconstruction: {NUM_RECONSTRUCTIONS} held-out galaxies, PSF {galaxy_data.PSF_FWHM} arcsec FWHM, "
          f"sky noise {galaxy_data.NOISE_SIGMA} ==")
    truth = test.truth[-NUM_RECONSTRUCTIONS:]
    psf = galaxy_data.psf_image()
    sigma = galaxy_data.NOISE_SIGMA
    blur = jax.jit(jax.vmap(lambda image: galaxy_data.convolve_psf(image, psf)))
    observed = blur(truth) + sigma * jax.random.normal(jax.random.key(args.seed + 2), truth.shape)

    def psnr(estimate):
        mse = jnp.mean((estimate - truth) ** 2, axis=(1, 2, 3))
        return float(jnp.mean(10.0 * jnp.log10(jnp.max(truth, axis=(1, 2, 3)) ** 2 / mse)))

    def chi2(estimate):
        return float(jnp.mean((observed - blur(estimate)) ** 2) / sigma**2)

    def classical(method):
        out = []
        for image in np.asarray(observed)[:, 0]:
            if method == "wiener":
                out.append(skimage.restoration.wiener(image, np.asarray(psf), balance=0.1, clip=False))
            else:
                out.append(skimage.restoration.richardson_lucy(np.clip(image, 0, None), np.asarray(psf),
                                                               num_iter=30, clip=False))
        return jnp.asarray(np.stack(out)[:, None], jnp.float32)

    start = time.perf_counter()
    dps = recon.deconvolve(shipped.model, shipped.schedule, observed, blur, sigma, jax.random.key(args.seed + 3),
                           num_steps=args.dps_steps)
    seconds = time.perf_counter() - start
    results = {
        "observed (no deconvolution)": observed,
        "Wiener (balance 0.1)": classical("wiener"),
        "Richardson-Lucy (30 iterations)": classical("richardson_lucy"),
        f"diffusion prior (DPS, {args.dps_steps} steps)": dps,
    }
    print(f"{'method':>34} {'PSNR (dB)':>10} {'reduced chi2':>13}")
    rows = [[name, psnr(estimate), chi2(estimate)] for name, estimate in results.items()]
    for name, decibels, chi_square in rows:
        print(f"{name:>34} {decibels:10.2f} {chi_square:13.2f}")
    print(f"DPS: {seconds:.0f} s for {NUM_RECONSTRUCTIONS} galaxies")
    best_classical = max(psnr(results["Wiener (balance 0.1)"]), psnr(results["Richardson-Lucy (30 iterations)"]))
    ok = psnr(dps) > best_classical and 0.8 < chi2(dps) < 1.25
    print(f"reconstruction target {'met' if ok else 'missed'} (PSNR above both baselines, chi2 in [0.8, 1.25])")
    return ok, Table("Reconstruction", ["method", "PSNR (dB)", "reduced chi2"], rows,
                     note=f"{NUM_RECONSTRUCTIONS} held-out galaxies, PSF {galaxy_data.PSF_FWHM} arcsec FWHM, sky noise "
                          f"{galaxy_data.NOISE_SIGMA}; DPS {seconds:.0f} s; target: the prior's PSNR above both "
                          "baselines', its chi2 in [0.8, 1.25]")


RECOVERY_STEPS = (2, 5, 10)


def shape_recovery(args, shipped, noising, sampling, recon, test) -> Table:
    """What the lowest steps of the sampling do to the shapes. Noise 1,000 held-out
    galaxies to step t0, then denoise them once, and sample them back to step 0 by the
    reference sampler's steps, one step at a time (eta 1, each with the galaxy's class
    label), and compare the ellipticities with the same galaxies' truth (W1 over the
    floor). For the exact model the galaxies sampled back are distributed as the data from
    any t0, so the ratio stays near 1 (below it: they are correlated with the truth)."""
    truth, labels = test.truth[:NUM_IMAGES], test.labels[:NUM_IMAGES]
    reference = np.asarray(ellipticities(truth))
    floor = morphology.wasserstein_1d(np.asarray(ellipticities(test.truth[NUM_IMAGES : 2 * NUM_IMAGES])), reference)
    ratio = lambda images: morphology.wasserstein_1d(np.asarray(ellipticities(images)), reference) / floor
    step = jax.jit(sampling.ddim_step)
    print(f"== Shape recovery: {NUM_IMAGES} held-out galaxies noised to step t0 and sampled back ==")
    print(f"{'t0':>4} {'noise':>7} {'ellipticity W1 / floor: denoised once':>38} {'sampled back':>13}")
    rows = []
    for t0 in RECOVERY_STEPS:
        key = jax.random.fold_in(jax.random.key(args.seed + 6), t0)
        noise_key, loop_key = jax.random.split(key)
        x = noised(shipped, noising, truth, t0, noise_key)
        once = denoised_once(shipped, sampling, x, jnp.asarray(t0), labels)
        for t, step_key in zip(range(t0, -1, -1), jax.random.split(loop_key, t0 + 1), strict=True):
            eps = sampling.predict_noise(shipped.model, x, jnp.asarray(t), labels)
            x = step(shipped.schedule, x, jnp.asarray(t), jnp.asarray(t - 1), eps, jax.random.normal(step_key, x.shape),
                     1.0)
        rows.append([t0, float(recon.noise_level(shipped.schedule, jnp.asarray(t0))), ratio(once), ratio(x)])
        _, noise_level, once_ratio, back_ratio = rows[-1]
        print(f"{t0:4d} {noise_level:7.4f} {once_ratio:38.2f} {back_ratio:13.2f}")
    return Table("Shape recovery: held-out galaxies noised to step t0 and sampled back",
                 ["t0", "noise", "ellipticity W1 / floor, denoised once", "ellipticity W1 / floor, sampled back"], rows,
                 note=f"{NUM_IMAGES} held-out galaxies")


CALIBRATION_STEPS = (5, 10, 20, 30, 50, 100, 200, 300, 400, 500)
CALIBRATION_IMAGES = 1000
BOOTSTRAP_RESAMPLES = 200


def second_moment_functionals(size: int, weight_sigma: float = 3.0) -> jnp.ndarray:
    """`(Q11 - Q22, 2 Q12, Q11 + Q22)` about the stamp centre, unnormalised, weighted by a
    round Gaussian: three linear functionals of an image, as rows of shape `(size * size,)`."""
    rows, cols = offsets_from_centre(size)
    weight = np.exp(-(rows**2 + cols**2) / (2 * weight_sigma**2))
    moments = [cols**2 - rows**2, 2 * rows * cols, rows**2 + cols**2]
    return jnp.asarray(np.stack([(weight * m).ravel() for m in moments]), jnp.float32)


def calibration(args, shipped, noising, sampling, recon, test) -> Table:
    print(f"== Denoiser calibration: {CALIBRATION_IMAGES} held-out galaxies, one Tweedie step ==")
    truth, labels = test.truth[:CALIBRATION_IMAGES], test.labels[:CALIBRATION_IMAGES]
    functionals = second_moment_functionals(truth.shape[-1])
    moments = lambda images: np.asarray(images.reshape(images.shape[0], -1) @ functionals.T, np.float64)
    true_moments = moments(truth)
    print(f"{'step':>5} {'noise':>7} {'quadrupole slope':>17} {'size slope':>12}   (1 for the posterior mean; "
          f"+- a standard error from {BOOTSTRAP_RESAMPLES} resamples of the galaxies)")
    resamples = np.random.default_rng(args.seed).integers(0, truth.shape[0], (BOOTSTRAP_RESAMPLES, truth.shape[0]))
    rows = []
    for t in CALIBRATION_STEPS:
        t = jnp.asarray(t)
        key = jax.random.fold_in(jax.random.key(args.seed + 4), t)
        estimate = moments(noised_and_denoised(shipped, noising, sampling, truth, labels, t, key))
        slopes = [regression_slopes(estimate[i], true_moments[i]) for i in (slice(None), *resamples)]
        (quadrupole, size), errors = slopes[0], np.std(slopes[1:], axis=0)
        noise = float(recon.noise_level(shipped.schedule, t))
        print(f"{int(t):5d} {noise:7.3f} {quadrupole:10.2f} +- {errors[0]:.2f} {size:5.2f} +- {errors[1]:.2f}")
        rows.append([int(t), noise, quadrupole, errors[0], size, errors[1]])
    return Table("Denoiser calibration: the truth's second moments regressed on one Tweedie step's",
                 ["step", "noise", "quadrupole slope", "quadrupole slope error", "size slope", "size slope error"],
                 rows, note=f"{CALIBRATION_IMAGES} held-out galaxies; 1 for the posterior mean; standard errors from "
                            f"{BOOTSTRAP_RESAMPLES} resamples of the galaxies")


NOISE_CALIBRATION_STEPS = (2, 5, 20)
NOISE_CALIBRATION_RINGS = ((1.5, 3.0), (3.0, 4.5), (4.5, 6.0))  # pixels from the stamp centre


def noise_calibration(args, shipped, noising, sampling, recon, test) -> Table:
    """At the lowest steps, in rings about the stamp centre (the galaxies' cores): the
    slope of the true noise regressed on the predicted noise (1 for the posterior mean;
    above 1, the network leaves noise in the image that it could have told apart), and
    their correlation (how much of the noise it tells apart at all)."""
    print(f"== Noise calibration at the lowest steps: {CALIBRATION_IMAGES} held-out galaxies ==")
    truth, labels = test.truth[:CALIBRATION_IMAGES], test.labels[:CALIBRATION_IMAGES]
    radius = distance_from_centre(truth.shape[-1])
    print(f"{'step':>5} {'noise':>7}  " + "  ".join(f"{f'{low:g}-{high:g} px: slope, corr':>22}"
                                                    for low, high in NOISE_CALIBRATION_RINGS))
    rows = []
    for t in NOISE_CALIBRATION_STEPS:
        t = jnp.asarray(t)
        key = jax.random.fold_in(jax.random.key(args.seed + 6), t)
        x_t = noised(shipped, noising, truth, t, key)
        noise = np.asarray(jax.random.normal(key, truth.shape))[:, 0]  # the noise `noised` drew
        predicted = np.asarray(sampling.predict_noise(shipped.model, x_t, t, labels))[:, 0]
        cells = []
        for low, high in NOISE_CALIBRATION_RINGS:
            ring = (radius >= low) & (radius < high)
            true, guess = noise[:, ring].ravel(), predicted[:, ring].ravel()
            cells.append((true @ guess / (guess @ guess), np.corrcoef(true, guess)[0, 1]))
        noise_level = float(recon.noise_level(shipped.schedule, t))
        print(f"{int(t):5d} {noise_level:7.3f}  " + "  ".join(f"{slope:14.2f}, {corr:5.2f}" for slope, corr in cells))
        rows.append([int(t), noise_level, *(value for cell in cells for value in cell)])
    return Table("Noise calibration at the lowest steps: the true noise regressed on the predicted noise",
                 ["step", "noise"] + [f"{low:g}-{high:g} px {what}" for low, high in NOISE_CALIBRATION_RINGS
                                      for what in ("slope", "correlation")], rows,
                 note=f"{CALIBRATION_IMAGES} held-out galaxies, in rings about the stamp centre; slope 1 for the "
                      "posterior mean")


def regression_slopes(estimate, truth) -> tuple[float, float]:
    """The slopes of the truth's quadrupole (both components pooled; their mean is zero by
    symmetry) and of its size (about their means) regressed on the estimate's."""
    quadrupole = np.sum(estimate[:, :2] * truth[:, :2]) / np.sum(estimate[:, :2] ** 2)
    size, true_size = estimate[:, 2] - estimate[:, 2].mean(), truth[:, 2] - truth[:, 2].mean()
    return quadrupole, np.sum(size * true_size) / np.sum(size**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sampler", choices=["heun", "ddim"], default=None,
                        help="the library's Heun sampler (default for a model with a denoiser: EDM or v-prediction) "
                             "or the reference DDIM sampler of the exercises (default for a noise predictor)")
    parser.add_argument("--heun-steps", type=int, default=pretrained.SAMPLER_STEPS, help="Heun steps per image")
    parser.add_argument("--churn", type=float, default=pretrained.SAMPLER_CHURN,
                        help="the Heun sampler's stochastic churn (S_churn; 0: deterministic)")
    parser.add_argument("--steps", type=int, default=300, help="DDIM steps per generated image")
    parser.add_argument("--eta", type=float, default=1.0, help="DDIM eta (0: deterministic, 1: ancestral)")
    parser.add_argument("--deterministic-from", type=int, default=-1, metavar="STEP",
                        help="take the steps at or below diffusion step STEP with eta 0 (default: none)")
    parser.add_argument("--dps-steps", type=int, default=100, help="steps of diffusion posterior sampling")
    parser.add_argument("--unconditional", action="store_true",
                        help="sample with the class label dropped instead of drawn from the training set's")
    parser.add_argument("--samples", type=int, default=NUM_IMAGES,
                        help="galaxies to generate (fewer to screen a candidate; the floor uses as many)")
    parser.add_argument("--batch", type=int, default=250, help="images sampled at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--skip-reconstruction", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-diagnoses", action="store_true",
                        help="skip the calibration and shape-recovery diagnoses")
    parser.add_argument("--weights", type=pathlib.Path, default=pretrained.GALAXY_UNET_PATH,
                        help="the model to score (default: the shipped one)")
    args = parser.parse_args()

    shipped = pretrained.load_galaxy_unet(args.weights)
    meta = shipped.metadata
    if args.sampler is None:
        args.sampler = "ddim" if shipped.denoiser is None else "heun"
    if args.sampler == "heun" and shipped.denoiser is None:
        parser.error(f"{args.weights.name} is a noise predictor only; sample it with --sampler ddim.")
    print(f"{args.weights.name}: {meta['parameters']:,} parameters, {meta['steps_done']} training steps "
          f"({meta['training_seconds'] / 60:.0f} min on {meta['device']}); "
          f"sampling schedule {shipped.schedule.num_steps} of {meta['schedule']['num_steps']} steps")
    train, test = galaxy_data.load_galaxies("train"), galaxy_data.load_galaxies("test")
    noising = load_script(paths.SOLUTIONS / "astro" / "01_galaxies_and_noising.py").module
    sampling = load_script(paths.SOLUTIONS / "astro" / "03_sampling.py").module
    recon = load_script(paths.SOLUTIONS / "astro" / "04_reconstruction.py").module
    tables, targets = [], []
    if not args.skip_generation:
        ok, generated = generation(args, shipped, noising, sampling, recon, train, test)
        tables += generated
        targets.append(f"generation target {'met' if ok else 'missed'}")
    if not args.skip_reconstruction:
        ok, reconstructed = reconstruction(args, shipped, recon, test)
        tables.append(reconstructed)
        targets.append(f"reconstruction target {'met' if ok else 'missed'}")
    if shipped.denoiser is None:
        print("== Sampling speed: skipped (the Heun sampler needs a denoiser: an EDM or v-prediction model) ==")
    elif not args.skip_speed:
        ok, speed = sampling_speed(args, shipped, train)
        tables.append(speed)
        targets.append(f"speed target {'met' if ok else 'missed'}")
    if not args.skip_diagnoses:
        tables += [calibration(args, shipped, noising, sampling, recon, test),
                   noise_calibration(args, shipped, noising, sampling, recon, test),
                   shape_recovery(args, shipped, noising, sampling, recon, test)]
    save("astro_quality", tables, summary="; ".join([f"{args.weights.name}, {meta['parameters']:,} parameters",
                                                     *targets]))


if __name__ == "__main__":
    main()
