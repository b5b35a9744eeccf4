"""seqlab's pre-LN translation Transformer as Hugging Face Pegasus (Zhang et al., 2020), both ways.

``PegasusForConditionalGeneration`` is Marian's model (:mod:`.marian`: the same names, the same
``[sin … | cos …]`` sinusoidal table, embeddings scaled by √d_model) with pre-LN layers and a final
LayerNorm after each stack: seqlab's ``model.norm_first=true`` (the translate default) with sinusoidal
positions. (mBART, the other pre-LN layout, normalises the embeddings too and learns its positions:
seqlab has no such model.)

Pegasus has one embedding matrix for both sides where seqlab trains a vocabulary per side, so the export
stacks them: rows 0 … V_tgt - 1 are the target's (the decoder's ids, and every logit seqlab computes),
rows V_tgt … V_tgt + V_src - 1 the source's (the source tokenizer's id i written as V_tgt + i, its
``<pad>`` as the shared 0: a padded position is never attended to, so its embedding does not matter).
The output layer, tied to that matrix, also scores the source's rows; their output bias is
:data:`~.vocabulary.NEVER`, so they take no probability and are never chosen: the target's logits, and
greedy decoding, are seqlab's. An import reads such a directory back (and any Pegasus checkpoint with a
``tokenizer.json``) as Marian's import does (:func:`.marian.import_translation`): one vocabulary, renumbered
to seqlab's specials, read by both sides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import Tensor

from ..data.tokenizer import PAD_ID
from ..models import Transformer
from . import importer
from .marian import (MARIAN_DEFAULTS, hf_config, import_translation, layer_tensors, marian_order, marian_table,
                     read_marian_config)
from .vocabulary import NEVER, renumbered

SHARED = ("shared", "encoder.embed_tokens", "decoder.embed_tokens")  # the one matrix's names


def pegasus_layout(model: Transformer, source: Tokenizer
                   ) -> tuple[dict[str, Any], dict[str, Tensor], Tokenizer, int]:
    """config.json, the tensors under PegasusForConditionalGeneration's names, the source tokenizer with
    its ids moved past the target's (as is, where the model shares one vocabulary), the vocabulary size."""
    c = model.config
    order = marian_order(c.d_model)
    target = model.tgt_embed.embedding.weight.detach().float()[:, order]  # (V_tgt, D)
    generator = model.generator.weight.detach().float()[:, order]
    bias = model.generator.bias.detach().float()
    shared = target
    if not c.share_embeddings:  # the source's rows after the target's, never output
        own = model.src_embed.embedding.weight.detach().float()[:, order]  # (V_src, D)
        shared = torch.cat([target, own])  # (V_tgt + V_src, D)
        generator = torch.cat([generator, torch.zeros_like(own)])
        bias = torch.cat([bias, torch.full((c.src_vocab_size,), NEVER)])
        moved_up = {i: PAD_ID if i == PAD_ID else c.tgt_vocab_size + i for i in range(c.src_vocab_size)}
        source = renumbered(source, moved_up)
    tensors = layer_tensors(model)
    # each embedding under its own name too: with tie_word_embeddings=false transformers ties none of them
    tensors |= {f"model.{name}.weight": shared for name in SHARED}
    tensors |= {f"model.{stack}.embed_positions.weight": marian_table(c.max_len, c.d_model)  # Pegasus saves it
                for stack in ("encoder", "decoder")}
    tensors["final_logits_bias"] = bias.unsqueeze(0)  # (1, V)
    if not c.tie_output:
        tensors["lm_head.weight"] = generator
    config = hf_config("pegasus", c) | {"vocab_size": shared.size(0)}
    return config, {name: t.contiguous().clone() for name, t in tensors.items()}, source, shared.size(0)


# PegasusConfig's defaults where they differ from MarianConfig's: one vocabulary, always shared.
PEGASUS_DEFAULTS = MARIAN_DEFAULTS | {"vocab_size": 50265, "decoder_start_token_id": 0, "pad_token_id": 0,
                                      "eos_token_id": 1, "share_encoder_decoder_embeddings": True}


@importer("pegasus")
def import_pegasus(source: Path, run: Path) -> str:
    """A PegasusForConditionalGeneration checkpoint directory -> a seqlab translate run (pre-LN)."""
    hf = read_marian_config(source, PEGASUS_DEFAULTS, "Pegasus")
    hf |= {"decoder_vocab_size": hf["vocab_size"], "share_encoder_decoder_embeddings": True}
    return import_translation(source, run, hf, "Pegasus", pre_ln=True)
