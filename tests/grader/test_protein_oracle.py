"""The oracle of the GB1 design competition."""

import numpy as np
import pytest

from course.data import proteins
from grader import protein_oracle

WILD_TYPE = proteins.GB1_WILD_TYPE


def mutate(sequence, *mutations):
    residues = list(sequence)
    for mutation in mutations:
        position = int(mutation[1:-1])
        assert residues[position - 2] == mutation[0]
        residues[position - 2] = mutation[-1]
    return "".join(residues)


def test_the_wild_type_changes_nothing():
    assert protein_oracle.stability_change(WILD_TYPE) == 0.0
    assert protein_oracle.mutations(WILD_TYPE) == []


def test_single_mutants_follow_the_measurements():
    data = proteins.gb1_stability()
    predicted = np.array([protein_oracle.stability_change(s) for s in data.sequences])
    assert np.corrcoef(predicted, data.stability)[0, 1] > 0.95


def test_effects_add_up_and_mutations_are_named():
    double = mutate(WILD_TYPE, "T2Q", "F30A")
    assert protein_oracle.mutations(double) == ["T2Q", "F30A"]
    total = protein_oracle.stability_change(mutate(WILD_TYPE, "T2Q")) + protein_oracle.stability_change(
        mutate(WILD_TYPE, "F30A"))
    assert protein_oracle.stability_change(double) == pytest.approx(total, abs=1e-9)


def test_bad_sequences_are_refused():
    with pytest.raises(ValueError, match="55 residues"):
        protein_oracle.stability_change(WILD_TYPE + "A")
    with pytest.raises(ValueError, match="standard amino acids"):
        protein_oracle.stability_change("X" + WILD_TYPE[1:])


def test_leaderboard_ranks_designs_within_bounds_first(capsys):
    too_many = mutate(WILD_TYPE, "T2Q", "K4E", "I6V", "L7I", "N8D")
    protein_oracle.main([WILD_TYPE, too_many])
    lines = capsys.readouterr().out.splitlines()
    assert "wild type" in lines[1] and "out of bounds" in lines[2]
