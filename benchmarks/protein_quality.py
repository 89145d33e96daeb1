"""Quality of the course's shipped protein language model (`course.pretrained.protein_lm`).

1. Held-out masked perplexity and top-1 accuracy on the proteins of the held-out homology
   clusters (15% of residues chosen, 80/10/10 corruption, fixed masks, the 20 standard
   amino acids scored), next to the amino-acid frequency baseline (training
   frequencies) and the uniform baseline (20).
2. Natural vs shuffled: per-residue pseudo-log-likelihood of held-out proteins (first
   `--length` residues) against the same sequences shuffled; ROC AUC (0.5 is chance).
3. GB1 stability (813 single mutants, Nisthal et al. 2019): held-out Spearman correlation
   of ridge regressions on the model's mean embeddings and on one-hot encodings (the
   baseline), over `--splits` random 80/20 splits (the penalty chosen on the training
   part by 5-fold cross-validation), on both together (embedding standardised), and the
   zero-shot Spearman of the model's masked-marginal scores.

    uv run python benchmarks/protein_quality.py [--proteins 100] [--length 80] [--splits 10]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.results import Table, save
from course import metrics
from course.data import proteins
from course.nn.protein_lm import AMINO_ACID_TOKENS, AMINO_ACIDS, CLS, EOS, MASK, PAD, ProteinLM, tokenize
from course.pretrained.protein_lm import load_protein_lm, model_config
from pretraining.protein_lm import CROP, evaluate, frequency_baseline, tiles

L2_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


@eqx.filter_jit
def masked_log_probabilities(model: ProteinLM, tokens):
    """(seq, vocab): log p(. | position i masked) at every position i."""
    n = tokens.shape[0]
    copies = jnp.where(jnp.eye(n, dtype=bool), MASK, tokens[None, :])
    return jax.nn.log_softmax(jax.vmap(model)(copies), axis=-1)[jnp.arange(n), jnp.arange(n)]


def pll_per_residue(model: ProteinLM, sequence: str) -> float:
    tokens = jnp.asarray(tokenize(sequence))
    log_p = masked_log_probabilities(model, tokens)
    own = log_p[jnp.arange(tokens.shape[0]), tokens]
    is_residue = (tokens != CLS) & (tokens != EOS) & (tokens != PAD)
    return float(jnp.sum(jnp.where(is_residue, own, 0.0))) / len(sequence)


def ridge(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    x_mean, y_mean = x.mean(0), y.mean()
    xc = x - x_mean
    w = np.linalg.solve(xc.T @ xc + l2 * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return w, float(y_mean - x_mean @ w)


def cross_validated_l2(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> float:
    folds = np.array_split(rng.permutation(len(y)), 5)
    best, best_score = L2_GRID[0], -np.inf
    for l2 in L2_GRID:
        scores = []
        for fold in folds:
            fit = np.setdiff1d(np.arange(len(y)), fold)
            w, b = ridge(x[fit], y[fit], l2)
            scores.append(metrics.spearman(x[fold] @ w + b, y[fold]))
        if np.mean(scores) > best_score:
            best, best_score = l2, float(np.mean(scores))
    return best


def one_hot(sequences: tuple[str, ...]) -> np.ndarray:
    index = {residue: i for i, residue in enumerate(AMINO_ACIDS)}
    out = np.zeros((len(sequences), len(sequences[0]) * 20))
    for row, sequence in enumerate(sequences):
        out[row, np.arange(len(sequence)) * 20 + [index[r] for r in sequence]] = 1.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proteins", type=int, default=100, help="held-out proteins for natural vs shuffled")
    parser.add_argument("--length", type=int, default=80, help="residues of each of them")
    parser.add_argument("--splits", type=int, default=10)
    args = parser.parse_args()
    start = time.time()
    model = load_protein_lm()
    config = model_config()
    parameters = sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    training = config["training"]
    print(f"model: {parameters:,} parameters, {training['steps_done']} steps "
          f"({training['minutes']} min on {training['device']})")

    train, held_out = proteins.proteome_split()
    scores = evaluate(model, tiles(list(held_out.values()), CROP))
    baseline = frequency_baseline(list(train.values()), list(held_out.values()))
    print(f"\n1. held-out masked LM ({len(held_out)} proteins, {scores['positions']:,} scored residues)")
    print(f"   perplexity {scores['perplexity']:.2f}   frequency baseline {baseline:.2f}   uniform 20.00")
    print(f"   top-1 accuracy {scores['accuracy']:.1%}")

    rng = np.random.default_rng(0)
    natural = [s[: args.length] for s in list(held_out.values())[: args.proteins]]
    shuffled = ["".join(rng.permutation(list(s))) for s in natural]
    natural_scores = np.array([pll_per_residue(model, s) for s in natural])
    shuffled_scores = np.array([pll_per_residue(model, s) for s in shuffled])
    auc = metrics.roc_auc(natural_scores, shuffled_scores)
    print(f"\n2. natural vs shuffled ({len(natural)} held-out proteins, first {args.length} residues)")
    print(f"   pseudo-log-likelihood per residue: natural {natural_scores.mean():.3f}, "
          f"shuffled {shuffled_scores.mean():.3f}; ROC AUC {auc:.3f}")

    gb1 = proteins.gb1_stability()
    tokens = jnp.asarray(np.stack([tokenize(s) for s in gb1.sequences]))
    embeddings = np.asarray(jax.jit(jax.vmap(lambda t: model.representations(t)))(tokens)[:, 1:-1].mean(axis=1),
                            dtype=np.float64)
    standardised = (embeddings - embeddings.mean(0)) / (embeddings.std(0) + 1e-8)
    features = {"one-hot (baseline)": one_hot(gb1.sequences), "PLM embedding": embeddings,
                "one-hot + PLM embedding": np.hstack([one_hot(gb1.sequences), standardised])}
    y = gb1.stability.astype(np.float64)
    results: dict[str, list[float]] = {name: [] for name in features}
    for split in range(args.splits):
        split_rng = np.random.default_rng(split)
        order = split_rng.permutation(len(y))
        fit, test = order[: int(0.8 * len(y))], order[int(0.8 * len(y)) :]
        for name, x in features.items():
            l2 = cross_validated_l2(x[fit], y[fit], split_rng)
            w, b = ridge(x[fit], y[fit], l2)
            results[name].append(metrics.spearman(x[test] @ w + b, y[test]))
    log_p = np.asarray(masked_log_probabilities(model, jnp.asarray(tokenize(gb1.wild_type))))[1:-1]
    wild_tokens = tokenize(gb1.wild_type)[1:-1]
    column = {residue: token for residue, token in zip(AMINO_ACIDS, AMINO_ACID_TOKENS, strict=True)}
    rows = [int(m[1:-1]) - 2 for m in gb1.mutations]  # GB1 numbering starts at residue 2
    zero_shot = np.array([log_p[i, column[m[-1]]] - log_p[i, wild_tokens[i]] for i, m in zip(rows, gb1.mutations,
                                                                                             strict=True)])
    print(f"\n3. GB1 stability, {len(y)} single mutants, held-out Spearman over {args.splits} random 80/20 splits")
    for name, values in results.items():
        print(f"   ridge on {name:<24} {np.mean(values):.3f} +- {np.std(values):.3f}")
    zero_shot_spearman = metrics.spearman(zero_shot, y)
    print(f"   zero-shot masked-marginal score  {zero_shot_spearman:.3f} (no training on GB1)")
    print(f"\n({time.time() - start:.0f} s)")
    tables = [
        Table("Held-out masked language modelling", ["predictor", "perplexity", "top-1 accuracy (%)"],
              [["protein LM", scores["perplexity"], 100 * scores["accuracy"]],
               ["amino-acid frequencies (training set)", baseline, None], ["uniform", 20.0, None]],
              note=f"{len(held_out)} proteins of held-out homology clusters, {scores['positions']:,} scored residues"),
        Table("Natural vs shuffled sequences", ["sequences", "pseudo-log-likelihood per residue"],
              [["natural", natural_scores.mean()], ["shuffled", shuffled_scores.mean()]],
              note=f"{len(natural)} held-out proteins, first {args.length} residues; ROC AUC {auc:.3f}"),
        Table("GB1 stability: held-out Spearman correlation", ["predictor", "Spearman", "sd over splits"],
              [[f"ridge on {name}", np.mean(values), np.std(values)] for name, values in results.items()]
              + [["zero-shot masked-marginal score (no training on GB1)", zero_shot_spearman, None]],
              note=f"{len(y)} single mutants (Nisthal et al. 2019), {args.splits} random 80/20 splits"),
    ]
    save("protein_quality", tables,
         summary=f"held-out perplexity {scores['perplexity']:.2f} (frequency baseline {baseline:.2f}), natural vs "
                 f"shuffled ROC AUC {auc:.3f}, GB1 Spearman {np.mean(results['PLM embedding']):.3f} on the "
                 f"embedding ({np.mean(results['one-hot (baseline)']):.3f} one-hot)",
         figures={"pseudo_log_likelihood_per_residue": {"natural": natural_scores, "shuffled": shuffled_scores},
                  "roc_auc": auc, "gb1_spearman_per_split": results})


if __name__ == "__main__":
    main()
