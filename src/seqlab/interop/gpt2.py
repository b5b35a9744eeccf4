"""seqlab's decoder-only Transformer LM as Hugging Face GPT-2 (Radford et al., 2019), both ways.

    seqlab export runs/lm --format hf --out hf/lm     # AutoModelForCausalLM / AutoTokenizer load hf/lm
    seqlab import hf hf/gpt2 --out runs/gpt2          # seqlab generate / eval / explore read runs/gpt2

GPT-2's block is :class:`~seqlab.models.TransformerLM`'s with its defaults: learned positions added to
the token embeddings, pre-LN blocks and a final LayerNorm, a GELU feed-forward network of width
``n_inner``, every projection with a bias, the output layer tied to the embedding. What differs is the
layout: GPT-2 stores its projections as ``Conv1D`` (the weight is ``nn.Linear``'s transposed, (in, out))
and fuses the query, key and value projections into one ``c_attn`` ((D, 3D), q then k then v).

Both directions write the files themselves (config.json, model.safetensors, tokenizer files): seqlab
needs no ``transformers`` to run them; the tests load the result with it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from torch import Tensor

from ..data.tokenizer import ids_needed, load_tokenizer
from ..errors import DamagedFileError, UserError
from ..io import write_json
from ..models import TransformerLM, TransformerLMConfig
from ..tasks import language_model as lm
from ..tasks import run_dir as runs
from . import exporter, importer
from .imported_run import ENDOFTEXT, read_checkpoint_tokenizer, read_weights, write_hf_tokenizer, write_imported_run
from .imported_run import special_tokens as hf_specials

# seqlab activation -> GPT-2's activation_function on export. "gelu_new" is GPT-2's own tanh GELU.
TO_HF_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}
# GPT-2 activation_function -> seqlab's on import ("gelu_fast" and "gelu_pytorch_tanh" are the same tanh
# approximation written otherwise).
FROM_HF_ACTIVATION = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                      "gelu_fast": "gelu_tanh", "relu": "relu"}
# GPT2Config's defaults, for the keys a config.json may leave out.
GPT2_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None,
    "activation_function": "gelu_new", "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
    "layer_norm_epsilon": 1e-5, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False, "tie_word_embeddings": True,
}
LAYER_NORM_EPS = 1e-5  # torch's nn.LayerNorm default, which every seqlab LayerNorm uses
GPT2_ROLES = ("pad", "bos", "eos", "unk")  # the special tokens GPT2Config and its tokenizer name


def special_tokens(tokenizer: Tokenizer) -> dict[str, str]:
    """HF's "pad_token", "bos_token", ... for each of :data:`GPT2_ROLES` a token of ``tokenizer`` plays."""
    return {f"{role}_token": token for role, token in hf_specials(tokenizer).items() if role in GPT2_ROLES}


# --- the weights, one layout to the other ---------------------------------------------------------

def to_gpt2_tensors(model: TransformerLM) -> dict[str, Tensor]:
    """TransformerLM's weights under GPT2LMHeadModel's names (``lm_head.weight`` only when untied)."""
    s = {name: t.detach().float() for name, t in model.state_dict().items()}
    out = {"transformer.wte.weight": s["embedding.weight"], "transformer.wpe.weight": s["position.embedding.weight"],
           "transformer.ln_f.weight": s["norm.weight"], "transformer.ln_f.bias": s["norm.bias"]}
    for i in range(model.config.n_layers):
        ours, theirs = f"layers.{i}.", f"transformer.h.{i}."
        qkv = [f"{ours}self_attn.w_{p}" for p in "qkv"]
        out[theirs + "attn.c_attn.weight"] = torch.cat([s[f"{p}.weight"] for p in qkv]).T  # (D, 3D)
        out[theirs + "attn.c_attn.bias"] = torch.cat([s[f"{p}.bias"] for p in qkv])
        for hf, name in (("attn.c_proj", "self_attn.w_o"), ("mlp.c_fc", "ff.linear1"), ("mlp.c_proj", "ff.linear2")):
            out[f"{theirs}{hf}.weight"] = s[f"{ours}{name}.weight"].T  # Conv1D: (in, out)
            out[f"{theirs}{hf}.bias"] = s[f"{ours}{name}.bias"]
        for hf, name in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out[f"{theirs}{hf}.weight"], out[f"{theirs}{hf}.bias"] = s[f"{ours}{name}.weight"], s[f"{ours}{name}.bias"]
    if not model.config.tie_weights:
        out["lm_head.weight"] = s["lm_head.weight"]
    return {name: t.contiguous().clone() for name, t in out.items()}


def from_gpt2_tensors(tensors: dict[str, Tensor], config: TransformerLMConfig) -> dict[str, Tensor]:
    """GPT-2's weights (with or without the ``transformer.`` prefix that GPT2LMHeadModel adds) as
    TransformerLM's state dict. A missing tensor is a KeyError naming it."""
    def get(name: str) -> Tensor:
        for key in (name, f"transformer.{name}"):
            if key in tensors:
                return tensors[key].float()
        raise KeyError(name)

    D = config.d_model
    s = {"embedding.weight": get("wte.weight"), "position.embedding.weight": get("wpe.weight"),
         "norm.weight": get("ln_f.weight"), "norm.bias": get("ln_f.bias")}
    for i in range(config.n_layers):
        ours, theirs = f"layers.{i}.", f"h.{i}."
        weight, bias = get(theirs + "attn.c_attn.weight"), get(theirs + "attn.c_attn.bias")  # (D, 3D), (3D,)
        for j, p in enumerate("qkv"):
            s[f"{ours}self_attn.w_{p}.weight"] = weight[:, j * D:(j + 1) * D].T
            s[f"{ours}self_attn.w_{p}.bias"] = bias[j * D:(j + 1) * D]
        for hf, name in (("attn.c_proj", "self_attn.w_o"), ("mlp.c_fc", "ff.linear1"), ("mlp.c_proj", "ff.linear2")):
            s[f"{ours}{name}.weight"] = get(f"{theirs}{hf}.weight").T
            s[f"{ours}{name}.bias"] = get(f"{theirs}{hf}.bias")
        for hf, name in (("ln_1", "norm1"), ("ln_2", "norm2")):
            s[f"{ours}{name}.weight"], s[f"{ours}{name}.bias"] = get(f"{theirs}{hf}.weight"), get(f"{theirs}{hf}.bias")
    s["lm_head.weight"] = s["embedding.weight"] if config.tie_weights else get("lm_head.weight")
    return {name: t.contiguous() for name, t in s.items()}


# --- export ---------------------------------------------------------------------------------------

def check_exportable(model: Any, run: Path) -> TransformerLM:
    """The run's model, or a UserError naming the first setting GPT-2 has no equivalent for."""
    if not isinstance(model, TransformerLM):
        raise UserError(f"{run} is a recurrent language model ({type(model).__name__}); only a Transformer LM "
                        f"(model.arch=transformer) exports as GPT-2")
    c = model.config
    refusals = [
        (c.positional != "learned", f"model.positional={c.positional}: GPT-2 adds learned positions "
                                    f"(model.positional=learned)"),
        (not c.norm_first, "model.norm_first=false (post-LN): GPT-2's blocks are pre-LN (model.norm_first=true)"),
        (c.activation not in TO_HF_ACTIVATION, f"model.activation={c.activation}: GPT-2 has "
                                               f"{', '.join(TO_HF_ACTIVATION)}"),
    ]
    for refused, why in refusals:
        if refused:
            raise UserError(f"{run} cannot be written as GPT-2: {why}")
    return model


def gpt2_config(c: TransformerLMConfig, tokenizer: Tokenizer) -> dict[str, Any]:
    """GPT2Config's config.json for a TransformerLM of config ``c``."""
    dropout = c.dropout
    specials = {f"{role}_token_id": None for role in GPT2_ROLES}
    specials.update({f"{role}_id": tokenizer.token_to_id(token) for role, token in special_tokens(tokenizer).items()})
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": c.vocab_size, "n_positions": c.max_len, "n_embd": c.d_model, "n_layer": c.n_layers,
        "n_head": c.n_heads, "n_inner": c.d_ff, "activation_function": TO_HF_ACTIVATION[c.activation],
        # GPT-2 has no dropout inside its feed-forward network: ff_dropout has no equivalent (training only)
        "resid_pdrop": dropout, "embd_pdrop": dropout,
        "attn_pdrop": dropout if c.attention_dropout is None else c.attention_dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS, "initializer_range": 0.02, "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False, "use_cache": True,
        "tie_word_embeddings": c.tie_weights, "dtype": "float32",
        "bos_token_id": specials["bos_token_id"], "eos_token_id": specials["eos_token_id"],
        "pad_token_id": specials["pad_token_id"],
    }


@exporter("hf", "lm")
def export_gpt2(run: Path, out: Path) -> str:
    """A Transformer LM run -> a GPT2LMHeadModel directory with its tokenizer."""
    _, model = runs.load_trained(run, lm.TASK, "a language-model run")
    model = check_exportable(model, run)
    tokenizer = load_tokenizer(run / "tokenizer.json", model.config.vocab_size)
    config = gpt2_config(model.config, tokenizer)
    write_json(out / "config.json", config, indent=2)
    save_file(to_gpt2_tensors(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    write_json(out / "generation_config.json", {key: config[key] for key in
                                                ("bos_token_id", "eos_token_id", "pad_token_id")}, indent=2)
    write_hf_tokenizer(tokenizer, out, model.config.max_len, special_tokens(tokenizer))
    c = model.config
    # out is the temporary directory the registry renames into place: the line does not name it
    return (f"a GPT-2 ({c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, context {c.max_len}, "
            f"vocabulary {c.vocab_size}) and its tokenizer, for transformers' AutoModelForCausalLM and AutoTokenizer")


# --- import ---------------------------------------------------------------------------------------

def read_gpt2_config(source: Path) -> dict[str, Any]:
    """config.json with GPT2Config's defaults filled in; a UserError for a setting seqlab's LM lacks."""
    values = {**GPT2_DEFAULTS, **json.loads((source / "config.json").read_text(encoding="utf-8"))}
    sizes = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
    if (not all(isinstance(values[k], int) and values[k] > 0 for k in sizes) or values["n_embd"] % values["n_head"]
            or not (values["n_inner"] is None or isinstance(values["n_inner"], int) and values["n_inner"] > 0)
            or not isinstance(values["layer_norm_epsilon"], (int, float))):
        raise DamagedFileError(source / "config.json", f"{', '.join(sizes)} must be positive integers, n_head "
                               f"must divide n_embd and layer_norm_epsilon be a number", "it is not a GPT-2 config")
    if values["n_inner"] is None:
        values["n_inner"] = 4 * values["n_embd"]
    act = values["activation_function"]
    refusals = [
        (act not in FROM_HF_ACTIVATION,
         f"activation_function={act!r} (seqlab reads {', '.join(FROM_HF_ACTIVATION)})"),
        (not values["scale_attn_weights"], "scale_attn_weights=false (seqlab divides by √d_head)"),
        (values["scale_attn_by_inverse_layer_idx"], "scale_attn_by_inverse_layer_idx=true"),
        (values["add_cross_attention"], "add_cross_attention=true (a decoder with cross-attention)"),
        (not math.isclose(values["layer_norm_epsilon"], LAYER_NORM_EPS, rel_tol=1e-6),
         f"layer_norm_epsilon={values['layer_norm_epsilon']} (seqlab's LayerNorms use {LAYER_NORM_EPS})"),
    ]
    for refused, why in refusals:
        if refused:
            raise UserError(f"{source}: seqlab's language model has no equivalent of {why}")
    return values


def read_hf_tokenizer(source: Path) -> tuple[Tokenizer, str]:
    """tokenizer.json, or GPT-2's original vocab.json + merges.txt made into the same byte-level BPE;
    with the seqlab tokenizer kind it is ("bpe" or "char")."""
    if (source / "tokenizer.json").is_file():
        tokenizer = read_checkpoint_tokenizer(source / "tokenizer.json")
    elif (source / "vocab.json").is_file() and (source / "merges.txt").is_file():
        tokenizer = Tokenizer(models.BPE.from_file(str(source / "vocab.json"), str(source / "merges.txt")))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        if tokenizer.token_to_id(ENDOFTEXT) is not None:
            tokenizer.add_special_tokens([ENDOFTEXT])
    else:
        raise UserError(f"{source} has no tokenizer (tokenizer.json, or vocab.json and merges.txt)")
    kind = json.loads(tokenizer.to_str())["model"]["type"]
    return tokenizer, "bpe" if kind == "BPE" else "char"


@importer("gpt2")
def import_gpt2(source: Path, run: Path) -> str:
    """A GPT2LMHeadModel checkpoint directory -> a seqlab lm run (TransformerLM + tokenizer)."""
    hf = read_gpt2_config(source)
    tensors = read_weights(source)
    tokenizer, kind = read_hf_tokenizer(source)
    if ids_needed(tokenizer) > hf["vocab_size"]:
        raise UserError(f"{source}: the tokenizer's ids go up to {ids_needed(tokenizer) - 1}, past the model's "
                        f"vocab_size {hf['vocab_size']}")
    tied = bool(hf["tie_word_embeddings"])
    dropout = hf["resid_pdrop"]
    config = TransformerLMConfig(
        hf["vocab_size"], d_model=hf["n_embd"], n_heads=hf["n_head"], n_layers=hf["n_layer"], d_ff=hf["n_inner"],
        max_len=hf["n_positions"], dropout=dropout, activation=FROM_HF_ACTIVATION[hf["activation_function"]],
        positional="learned", norm_first=True, tie_weights=tied, attention_dropout=hf["attn_pdrop"],
        ff_dropout=0.0)  # GPT-2 has no dropout inside its feed-forward network
    model = TransformerLM(config)
    try:
        model.load_state_dict(from_gpt2_tensors(tensors, config), strict=True)
    except KeyError as error:
        raise DamagedFileError(source / "model.safetensors", f"no tensor {error.args[0]}",
                               "it does not hold the GPT-2 that config.json describes") from None
    except RuntimeError as error:  # shapes that config.json does not give
        raise DamagedFileError(source / "model.safetensors", str(error).splitlines()[-1].strip(),
                               "it does not hold the GPT-2 that config.json describes") from None
    lm_config = lm.LMConfig(
        data=lm.LMDataConfig(tokenizer=kind, block_size=hf["n_positions"],
                             vocab_size=max(tokenizer.get_vocab_size(), 260)),
        model=lm.LMModelConfig(d_model=config.d_model, n_heads=config.n_heads, n_layers=config.n_layers,
                               d_ff=config.d_ff, dropout=dropout, attention_dropout=config.attention_dropout,
                               ff_dropout=0.0, positional="learned", activation=config.activation,
                               norm_first=True, tie_weights=tied),
        # the batch seqlab eval scores with: at most ~2^25 logits at once (one 1024-token block of GPT-2's
        # 50,257-token vocabulary, 200 MB), not the 32 blocks (6 GB) of the training default
        train=dataclasses.replace(lm.LMConfig().train, batch_size=max(1, min(
            32, 2**25 // (hf["n_positions"] * hf["vocab_size"])))))
    write_imported_run(run, lm.TASK, lm_config, model, tokenizer, f"Hugging Face GPT-2 {source.resolve()}")
    n = sum(p.numel() for p in model.parameters())
    return (f"a seqlab language-model run from the GPT-2 in {source} ({n:,} parameters, {config.n_layers} "
            f"layers, d_model {config.d_model}, context {config.max_len}, vocabulary {config.vocab_size})")
