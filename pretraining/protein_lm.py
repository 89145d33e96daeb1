"""Train the course's protein language model on the course proteome, held-out clusters
excluded, and save it beside this file:

    uv run python -m pretraining.protein_lm            # the shipped settings
    uv run python -m pretraining.protein_lm --help     # what can be changed

ESM-2's recipe, scaled down: random crops of `CROP` tokens, 15% of the residues chosen
for prediction, of which 80% are replaced by `<mask>`, 10% by a random amino acid and 10%
left as they are; the cross-entropy is taken at the chosen positions only. Both are the
exercises' own answers (`mask_tokens`, `masked_lm_loss` of
`solutions/protein/01_tokens_and_masking.py`), loaded from the reference solution, so the
library never holds an exercise's answer. AdamW with a
linear warm-up and a cosine decay. Every `--eval-every` steps the held-out masked
perplexity is printed and the model saved (a checkpoint you can stop at).
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course.data.proteins import proteome_split
from course.nn.protein_lm import AMINO_ACID_TOKENS, PAD, ProteinLM, tokenize
from course.pretrained.protein_lm import save_protein_lm
from grader import paths
from grader.loader import load_script

CROP = 128
EVALUATION_SEED = 1234
MASKING = load_script(paths.SOLUTIONS / "protein" / "01_tokens_and_masking.py").module


def crops(sequences: list[str], length: int, rng: np.random.Generator, per_residues: int = 100) -> np.ndarray:
    """Random windows of `length` tokens of `<cls> sequence <eos>`, about one per
    `per_residues` residues of each protein (so long proteins weigh more), padded."""
    windows = []
    for sequence in sequences:
        tokens = tokenize(sequence)
        for _ in range(max(1, round(len(sequence) / per_residues))):
            start = rng.integers(0, max(1, len(tokens) - length + 1))
            windows.append(tokens[start : start + length])
    out = np.full((len(windows), length), PAD, dtype=np.int32)
    for row, window in enumerate(windows):
        out[row, : len(window)] = window
    return out


def tiles(sequences: list[str], length: int) -> np.ndarray:
    """Every protein cut into consecutive windows of `length` tokens (for evaluation)."""
    windows = []
    for sequence in sequences:
        tokens = tokenize(sequence)
        windows += [tokens[start : start + length] for start in range(0, len(tokens), length)]
    out = np.full((len(windows), length), PAD, dtype=np.int32)
    for row, window in enumerate(windows):
        out[row, : len(window)] = window
    return out


def batch_loss(model: ProteinLM, tokens: Int[Array, "batch seq"], key: PRNGKeyArray) -> Float[Array, ""]:
    """The masked-LM loss of a batch, pooled over all its chosen positions: the exercises'
    `mask_tokens` and `masked_lm_loss` (the reference answers) on the flattened batch."""
    corrupted, chosen = jax.vmap(MASKING.mask_tokens)(tokens, jax.random.split(key, tokens.shape[0]))
    logits = jax.vmap(model)(corrupted)
    return MASKING.masked_lm_loss(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1), chosen.reshape(-1))


@eqx.filter_jit
def _evaluate_batch(model: ProteinLM, tokens, key):
    corrupted, chosen = jax.vmap(MASKING.mask_tokens)(tokens, jax.random.split(key, tokens.shape[0]))
    chosen = chosen & jnp.isin(tokens, jnp.asarray(AMINO_ACID_TOKENS))  # score the 20 standard residues
    logits = jax.vmap(model)(corrupted)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), tokens[..., None], axis=-1)[..., 0]
    correct = jnp.argmax(logits, axis=-1) == tokens
    return jnp.sum(nll * chosen), jnp.sum(correct * chosen), jnp.sum(chosen)


def evaluate(model: ProteinLM, tokens: np.ndarray, batch_size: int = 64, seed: int = EVALUATION_SEED
             ) -> dict[str, float]:
    """Masked perplexity and top-1 accuracy on windows `tokens`, with fixed random masks
    (15% of the residues, 80/10/10), scoring the 20 standard amino acids."""
    key = jax.random.key(seed)
    totals = np.zeros(3)
    for start in range(0, len(tokens), batch_size):
        key, batch_key = jax.random.split(key)
        batch = tokens[start : start + batch_size]
        totals += np.array([float(value) for value in _evaluate_batch(model, jnp.asarray(batch), batch_key)])
    nll, correct, count = totals
    return {"perplexity": float(np.exp(nll / count)), "accuracy": float(correct / count), "positions": int(count)}


def frequency_baseline(train: list[str], test: list[str]) -> float:
    """Perplexity on `test` residues of the training set's amino-acid frequencies."""
    counts = {residue: 1 for residue in "LAGVSERTIDPKQNFYMHWC"}
    for sequence in train:
        for residue in sequence:
            if residue in counts:
                counts[residue] += 1
    total = sum(counts.values())
    log_p = {residue: np.log(count / total) for residue, count in counts.items()}
    scores = [log_p[residue] for sequence in test for residue in sequence if residue in log_p]
    return float(np.exp(-np.mean(scores)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="time a few steps, save nothing")
    args = parser.parse_args()

    train_proteins, test_proteins = proteome_split()
    rng = np.random.default_rng(args.seed)
    train_windows = np.concatenate([crops(list(train_proteins.values()), CROP, rng) for _ in range(4)])
    test_windows = tiles(list(test_proteins.values()), CROP)
    baseline = frequency_baseline(list(train_proteins.values()), list(test_proteins.values()))
    print(f"{len(train_proteins)} training proteins ({len(train_windows)} crops), {len(test_proteins)} held out; "
          f"frequency baseline perplexity {baseline:.2f}, uniform 20", flush=True)

    architecture = {"dim": args.dim, "num_layers": args.layers, "num_heads": args.heads, "hidden_dim": 4 * args.dim}
    model_key, train_key = jax.random.split(jax.random.key(args.seed))
    model = ProteinLM(args.dim, args.layers, args.heads, hidden_dim=4 * args.dim, key=model_key)
    num_params = sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    print(f"{num_params:,} parameters", flush=True)

    schedule = optax.warmup_cosine_decay_schedule(0.0, args.learning_rate, args.warmup, args.steps,
                                                  end_value=0.05 * args.learning_rate)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.01))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    data = jnp.asarray(train_windows)

    @eqx.filter_jit
    def run_steps(params, opt_state, data, keys):
        def step(carry, key):
            params, opt_state = carry
            batch_key, loss_key = jax.random.split(key)
            batch = data[jax.random.randint(batch_key, (args.batch_size,), 0, data.shape[0])]
            loss, grads = jax.value_and_grad(lambda p: batch_loss(eqx.combine(p, static), batch, loss_key))(params)
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = optimizer.update(grads, opt_state, params)
            return (eqx.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), keys)
        return params, opt_state, losses

    chunk = 50 if not args.dry_run else 10
    keys = jax.random.split(train_key, args.steps)
    start_time = time.time()
    history = []
    for start in range(0, args.steps, chunk):
        params, opt_state, losses = run_steps(params, opt_state, data, keys[start : start + chunk])
        done = min(start + chunk, args.steps)
        elapsed = time.time() - start_time
        print(f"step {done}: loss {float(jnp.mean(losses)):.3f} ({elapsed:.0f} s)", flush=True)
        if args.dry_run and done >= 3 * chunk:
            print(f"{(elapsed / done):.3f} s per step including compilation")
            return
        if done % args.eval_every == 0 or done == args.steps:
            model = eqx.combine(params, static)
            scores = evaluate(model, test_windows)
            history.append({"step": done, "minutes": round(elapsed / 60, 1), **scores})
            print(f"  held-out perplexity {scores['perplexity']:.2f} (frequency baseline {baseline:.2f}), "
                  f"top-1 accuracy {scores['accuracy']:.1%}", flush=True)
            record = {
                "training": {"command": "uv run python -m pretraining.protein_lm",
                             "arguments": vars(args), "crop": CROP, "steps_done": done,
                             "minutes": round(elapsed / 60, 1), "parameters": int(num_params),
                             "device": jax.devices()[0].device_kind},
                "held_out": {"perplexity": round(scores["perplexity"], 3), "accuracy": round(scores["accuracy"], 4),
                             "frequency_baseline_perplexity": round(baseline, 3)},
                "history": history,
            }
            save_protein_lm(model, architecture, record)


if __name__ == "__main__":
    main()
