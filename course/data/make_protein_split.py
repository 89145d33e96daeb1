"""Split the course proteome into training and held-out proteins by homology.

Run once, by hand, with pyhmmer (not a dependency of the course):

    uv run --with pyhmmer python -m course.data.make_protein_split

Every protein is searched against all the others with `phmmer` (HMMER3); two proteins
with a hit of E-value below `E_VALUE` are linked, and the connected components are the
homology clusters. Whole clusters, drawn at random with a fixed seed, are held out until
`HELD_OUT_FRACTION` of the proteins are, so that no held-out protein has a detectable
homologue in the training set. The identifiers go to `course/data/protein/held_out_ids.txt`.
"""

import random

from course.data.proteins import HELD_OUT_FILE, proteome

E_VALUE = 1e-3
HELD_OUT_FRACTION = 0.1
SEED = 0


def _text(name: str | bytes) -> str:
    return name.decode() if isinstance(name, bytes) else name


def homology_clusters(proteins: dict[str, str]) -> list[list[str]]:
    import pyhmmer

    alphabet = pyhmmer.easel.Alphabet.amino()
    names = list(proteins)
    sequences = [
        pyhmmer.easel.TextSequence(name=name, sequence=proteins[name]).digitize(alphabet)
        for name in names
    ]
    database = pyhmmer.easel.DigitalSequenceBlock(alphabet, sequences)
    parent = {name: name for name in names}

    def root(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for hits in pyhmmer.hmmer.phmmer(sequences, database, E=E_VALUE):
        query = _text(hits.query.name)
        for hit in hits:
            if hit.evalue < E_VALUE:
                parent[root(_text(hit.name))] = root(query)
    clusters: dict[str, list[str]] = {}
    for name in names:
        clusters.setdefault(root(name), []).append(name)
    return sorted(clusters.values(), key=lambda cluster: (-len(cluster), cluster[0]))


def main() -> None:
    proteins = proteome()
    clusters = homology_clusters(proteins)
    order = list(range(len(clusters)))
    random.Random(SEED).shuffle(order)
    held_out: list[str] = []
    target = HELD_OUT_FRACTION * len(proteins)
    for index in order:
        if len(held_out) >= target:
            break
        if len(clusters[index]) <= 0.02 * len(proteins):  # never hold out one giant family
            held_out.extend(clusters[index])
    sizes = [len(cluster) for cluster in clusters]
    header = (
        f"# Held-out proteins of proteome.faa.gz: {len(held_out)} of {len(proteins)}, whole homology clusters\n"
        f"# (phmmer all-vs-all, E < {E_VALUE}: {len(clusters)} clusters, {sizes.count(1)} singletons,\n"
        f"# largest {max(sizes)}). Made by `uv run --with pyhmmer python -m course.data.make_protein_split`.\n"
    )
    HELD_OUT_FILE.write_text(header + "\n".join(sorted(held_out)) + "\n")
    print(header)


if __name__ == "__main__":
    main()
