"""The course's small protein language model: loading it (with a checksum check),
saving it, and loading real ESM-2 weights converted with `esm2quinox` instead (optional).

The weights `protein_lm.eqx` and their hyperparameters `protein_lm.json` lie beside this
file; they are made by `uv run python -m pretraining.protein_lm`.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from course.nn.protein_lm import ALPHABET, LanguageModelHead, ProteinLM

WEIGHTS_FILE = Path(__file__).with_name("protein_lm.eqx")
CONFIG_FILE = Path(__file__).with_name("protein_lm.json")
RETRAIN_COMMAND = "uv run python -m pretraining.protein_lm"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_config(path: Path = CONFIG_FILE) -> dict[str, Any]:
    """The hyperparameters, training record and checksum stored beside the weights."""
    return json.loads(path.read_text())


def _skeleton(architecture: dict[str, int]) -> ProteinLM:
    """The model's structure and shapes, without initialising its weights (nothing compiled)."""
    return eqx.filter_eval_shape(ProteinLM, architecture["dim"], architecture["num_layers"], architecture["num_heads"],
                                 hidden_dim=architecture["hidden_dim"], key=jax.random.key(0))


def save_protein_lm(model: ProteinLM, architecture: dict[str, int], record: dict[str, Any],
                    weights_file: Path = WEIGHTS_FILE, config_file: Path = CONFIG_FILE) -> None:
    """Write the weights, then the hyperparameters, the training `record` and the checksum."""
    eqx.tree_serialise_leaves(weights_file, model)
    config = {"architecture": architecture, "sha256": sha256(weights_file), **record}
    config_file.write_text(json.dumps(config, indent=2) + "\n")


def load_protein_lm(weights_file: Path = WEIGHTS_FILE, config_file: Path = CONFIG_FILE) -> ProteinLM:
    """The course's pretrained protein language model (a few MB, CPU-friendly).

    The weights' sha256 is checked against the one recorded when they were saved.
    """
    if not weights_file.exists() or not config_file.exists():
        raise FileNotFoundError(
            f"The protein language model's weights ({weights_file.name}) or settings ({config_file.name}) are "
            f"missing. Restore them from the course repository (`git checkout -- {weights_file.parent}`) or "
            f"retrain them with `{RETRAIN_COMMAND}`."
        )
    config = model_config(config_file)
    actual = sha256(weights_file)
    if actual != config["sha256"]:
        raise ValueError(
            f"{weights_file.name} does not match its recorded checksum (sha256 {actual[:12]}..., expected "
            f"{config['sha256'][:12]}...): the file is damaged or was replaced (a Git LFS pointer?). Restore it "
            f"from the course repository or retrain with `{RETRAIN_COMMAND}`."
        )
    return eqx.tree_deserialise_leaves(weights_file, _skeleton(config["architecture"]))


def from_esm2quinox(esm2: Any) -> ProteinLM:
    """Copy the weights of an `esm2quinox.ESM2` model (real ESM-2, converted from PyTorch
    with `esm2quinox.from_torch`) into a `ProteinLM`, so that everything in the course
    runs on it. Optional: needs `esm2quinox` installed and weights you already have;
    nothing is downloaded here.

        import esm, esm2quinox                      # pip install fair-esm esm2quinox
        torch_model, _ = esm.pretrained.esm2_t6_8M_UR50D()
        model = from_esm2quinox(esm2quinox.from_torch(torch_model))
    """
    if esm2.logit_head.linear2.weight.shape[0] != len(ALPHABET):
        raise ValueError(f"ESM-2 has {len(ALPHABET)} tokens; this model has {esm2.logit_head.linear2.weight.shape[0]}.")
    layers = esm2.layers  # one module whose arrays carry a leading layer axis
    dim, num_heads = esm2.embed_size, esm2.num_heads
    hidden_dim = layers.linear1.weight.shape[1]
    model = ProteinLM(dim, esm2.num_layers, num_heads, hidden_dim=hidden_dim, token_dropout=esm2.token_dropout,
                      key=jax.random.key(0))
    blocks = []
    for index, block in enumerate(model.blocks):
        layer = jax.tree.map(lambda leaf, index=index: leaf[index] if eqx.is_array(leaf) else leaf, layers)
        block = eqx.tree_at(lambda b: b.attention.attention, block, layer.attn)
        block = eqx.tree_at(lambda b: (b.attention_norm, b.feed_forward_norm), block,
                            (layer.layer_norm1, layer.layer_norm2))
        block = eqx.tree_at(lambda b: (b.feed_forward.hidden, b.feed_forward.output), block,
                            (layer.linear1, layer.linear2))
        blocks.append(block)
    head = esm2.logit_head
    lm_head = LanguageModelHead(dim, len(ALPHABET), key=jax.random.key(0))
    lm_head = eqx.tree_at(lambda h: (h.dense, h.norm, h.bias), lm_head,
                          (head.linear1, head.layer_norm, head.linear2.bias))
    model = eqx.tree_at(lambda m: (m.blocks, m.final_norm, m.lm_head), model,
                        (tuple(blocks), esm2.layer_norm, lm_head))
    return eqx.tree_at(lambda m: m.token_embedding.weight, model, head.linear2.weight)
