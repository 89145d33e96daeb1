"""Protein data shipped with the course (see `course/data/protein/README.md` for sources,
licences and citations).

- `proteome()`: the 2,100 predicted proteins of one bacterial genome, the training data of
  the course's protein language model.
- `held_out_ids()`: the proteins kept out of training, whole homology clusters at a time,
  so that held-out perplexity measures generalisation to new protein families.
- `gb1_stability()`: folding stability of ~800 single mutants of the GB1 domain.
"""

import csv
import gzip
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).parent / "protein"
PROTEOME_FILE = DATA_DIR / "proteome.faa.gz"
HELD_OUT_FILE = DATA_DIR / "held_out_ids.txt"
GB1_FILE = DATA_DIR / "gb1_stability.csv"

GB1_WILD_TYPE = "TYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"
"""Residues 2-56 of protein G domain B1, the sequence the GB1 mutants are written against."""


def read_fasta(path: str | Path) -> dict[str, str]:
    """`{identifier: sequence}` from a (possibly gzipped) FASTA file; the identifier is the
    header's first word, and a trailing stop codon `*` is dropped."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    records: dict[str, list[str]] = {}
    current = None
    with opener(path, "rt") as lines:
        for line in lines:
            line = line.strip()
            if line.startswith(">"):
                current = line[1:].split()[0]
                records[current] = []
            elif line and current is not None:
                records[current].append(line)
    return {name: "".join(parts).rstrip("*") for name, parts in records.items()}


@cache
def _proteome() -> tuple[tuple[str, str], ...]:
    return tuple(read_fasta(PROTEOME_FILE).items())


def proteome() -> dict[str, str]:
    """The 2,100 proteins of the course's bacterial proteome, `{identifier: sequence}`."""
    return dict(_proteome())


def held_out_ids() -> frozenset[str]:
    """Identifiers of the held-out proteins (about 10%, whole homology clusters)."""
    return frozenset(line.strip() for line in HELD_OUT_FILE.read_text().splitlines()
                     if line.strip() and not line.startswith("#"))


def proteome_split() -> tuple[dict[str, str], dict[str, str]]:
    """`(train, held_out)` proteins, split by homology (`held_out_ids`)."""
    held_out = held_out_ids()
    proteins = proteome()
    train = {name: sequence for name, sequence in proteins.items() if name not in held_out}
    test = {name: sequence for name, sequence in proteins.items() if name in held_out}
    return train, test


@dataclass(frozen=True)
class StabilityData:
    """Mutants of one protein with a measured stability each (higher: more stable)."""

    wild_type: str
    mutations: tuple[str, ...]  # such as "T02A": wild-type residue, position, new residue
    sequences: tuple[str, ...]
    stability: np.ndarray  # (n,) float32, kcal/mol

    def __len__(self) -> int:
        return len(self.sequences)


def gb1_stability() -> StabilityData:
    """Folding stability of 813 single mutants of GB1 (Nisthal et al. 2019).

    `stability` is minus the folding free energy of MAVE-NN's copy of the data, in
    kcal/mol: the higher, the more stable. Buried core residues (Y3, L5, F30, Y45, F52) are where mutations hurt most.
    """
    with GB1_FILE.open() as rows:
        records = [row for row in csv.DictReader(rows)]
    return StabilityData(
        wild_type=GB1_WILD_TYPE,
        mutations=tuple(row["mutation"] for row in records),
        sequences=tuple(row["sequence"] for row in records),
        stability=np.array([float(row["stability"]) for row in records], dtype=np.float32),
    )
