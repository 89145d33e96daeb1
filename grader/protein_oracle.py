"""The oracle of the GB1 design competition (`protein` track, notebook 4).

Scores designed variants of GB1 by their predicted change in folding stability
(kcal/mol, positive: more stable than the wild type), with a one-hot ridge regression
fitted on all 813 measured single mutants (Nisthal et al. 2019), i.e. an additive model
of the measured effects. Designs with more than `MAX_MUTATIONS` mutations are ranked
but marked out of bounds. The course language model's plausibility of the mutations
(sum of masked-marginal scores) is printed beside.

    uv run python -m grader.protein_oracle SEQUENCE [SEQUENCE ...]

Honest limits: the oracle adds single-mutant effects, so it knows nothing of epistasis;
a real competition would make and measure the designs.
"""

from __future__ import annotations

import argparse
from functools import cache

import numpy as np

from course.data import proteins
from course.nn.protein_lm import AMINO_ACIDS

MAX_MUTATIONS = 4
L2 = 0.1


def _one_hot(sequences: list[str]) -> np.ndarray:
    index = {residue: i for i, residue in enumerate(AMINO_ACIDS)}
    out = np.zeros((len(sequences), len(sequences[0]) * 20))
    for row, sequence in enumerate(sequences):
        out[row, np.arange(len(sequence)) * 20 + [index[residue] for residue in sequence]] = 1.0
    return out


@cache
def _fit() -> tuple[np.ndarray, float]:
    data = proteins.gb1_stability()
    x, y = _one_hot(list(data.sequences)), data.stability.astype(np.float64)
    x_mean, y_mean = x.mean(0), y.mean()
    xc = x - x_mean
    w = np.linalg.solve(xc.T @ xc + L2 * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return w, float(y_mean - x_mean @ w)


def check_sequence(sequence: str) -> str:
    sequence = sequence.strip().upper()
    wild_type = proteins.GB1_WILD_TYPE
    if len(sequence) != len(wild_type):
        raise ValueError(f"A GB1 design has {len(wild_type)} residues (2-56), this one {len(sequence)}.")
    unknown = sorted(set(sequence) - set(AMINO_ACIDS))
    if unknown:
        raise ValueError(f"Only the 20 standard amino acids are allowed, not {unknown}.")
    return sequence


def mutations(sequence: str) -> list[str]:
    """Mutations of a design relative to the GB1 wild type, such as `T2Q` (positions 2-56)."""
    sequence = check_sequence(sequence)
    return [f"{a}{i + 2}{b}" for i, (a, b) in enumerate(zip(proteins.GB1_WILD_TYPE, sequence, strict=True)) if a != b]


def stability_change(sequence: str) -> float:
    """The oracle's stability of `sequence` minus that of the wild type (kcal/mol)."""
    w, _ = _fit()
    design, wild_type = _one_hot([check_sequence(sequence)])[0], _one_hot([proteins.GB1_WILD_TYPE])[0]
    return float((design - wild_type) @ w)


def plausibility(sequence: str) -> float:
    """Sum over the mutations of the course model's masked-marginal scores at the wild type."""
    import jax
    import jax.numpy as jnp

    from course.nn.protein_lm import AMINO_ACID_TOKENS, MASK, tokenize
    from course.pretrained.protein_lm import load_protein_lm

    sequence = check_sequence(sequence)
    model = load_protein_lm()
    tokens = jnp.asarray(tokenize(proteins.GB1_WILD_TYPE))
    n = tokens.shape[0]
    copies = jnp.where(jnp.eye(n, dtype=bool), MASK, tokens[None, :])
    log_p = jax.nn.log_softmax(jax.jit(jax.vmap(model))(copies), axis=-1)[jnp.arange(n), jnp.arange(n)]
    scores = np.asarray(log_p[:, jnp.asarray(AMINO_ACID_TOKENS)] - log_p[jnp.arange(n), tokens][:, None])[1:-1]
    index = {residue: i for i, residue in enumerate(AMINO_ACIDS)}
    return float(sum(scores[i, index[b]] for i, (a, b) in enumerate(zip(proteins.GB1_WILD_TYPE, sequence,
                                                                            strict=True)) if a != b))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sequences", nargs="+", help=f"designs: {len(proteins.GB1_WILD_TYPE)} residues each")
    args = parser.parse_args(argv)
    rows = []
    for sequence in args.sequences:
        found = mutations(sequence)
        rows.append((stability_change(sequence), len(found) <= MAX_MUTATIONS, found, plausibility(sequence)))
    rows.sort(key=lambda row: (row[1], row[0]), reverse=True)
    print(f"{'rank':>4}  {'stability change':>16}  {'plausibility':>12}  mutations")
    for rank, (change, allowed, found, plm) in enumerate(rows, 1):
        note = "" if allowed else f"  (out of bounds: more than {MAX_MUTATIONS} mutations)"
        print(f"{rank:>4}  {change:>+13.2f} kcal/mol  {plm:>12.1f}  {' '.join(found) or 'wild type'}{note}")


if __name__ == "__main__":
    main()
