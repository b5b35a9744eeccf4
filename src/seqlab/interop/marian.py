"""seqlab's translation Transformer as Hugging Face Marian (Junczys-Dowmunt et al., 2018), both ways.

    seqlab export runs/de-en --format hf --out hf/de-en     # AutoModelForSeq2SeqLM / AutoTokenizer load it
    seqlab import hf hf/marian --out runs/marian            # seqlab translate / eval / explore read it

``MarianMTModel`` is the Transformer of "Attention Is All You Need" as seqlab builds it with
``model.norm_first=false`` and ``model.positional=sinusoidal``: embeddings scaled by √d_model plus the
sinusoidal table (§3.4-3.5), post-LN layers with no final LayerNorm, biases everywhere, an output bias
(``final_logits_bias``), the output layer tied to the target embedding unless untied. Two differences of
layout, both exact to convert:

- Marian's table puts the sines of every frequency first and the cosines after (``[sin … | cos …]``),
  where §3.5 interleaves them (``sin, cos, sin, cos, …``). Permuting the model dimensions of everything
  that reads or writes the residual stream (embeddings, the input columns of q, k, v, fc1 and the output
  layer, the output rows and biases of out_proj and fc2, the LayerNorms) computes the same function with
  the table in the other order: LayerNorm's mean and variance do not see the order of the dimensions.
- seqlab's vocabularies start ``<pad> <bos> <eos> <unk>``; an import renumbers a Marian vocabulary so
  (:mod:`.vocabulary`).

seqlab trains a tokenizer per side, so an export writes two embeddings (``share_encoder_decoder_embeddings
= false``, ``decoder_vocab_size``; one where the run shares one, as an imported Marian may): the source
tokenizer is the directory's own (``AutoTokenizer``), the target's is in ``target_tokenizer/``. A pre-LN
run is written as Pegasus instead (:mod:`.pegasus`). Only the files are written and read; ``transformers``
is needed only to use them. An import reads ``tokenizer.json`` (and ``target_tokenizer/``), or, where there
is none, as in the OPUS-MT checkpoints, Marian's SentencePiece models and vocabulary (:mod:`.spm`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from torch import Tensor

from ..config import to_dict
from ..data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, ids_needed, load_tokenizer, save_tokenizer
from ..errors import DamagedFileError, UserError
from ..io import write_json
from ..models import Transformer, TransformerConfig
from ..nn.positional import sinusoidal_table
from ..tasks import run_dir as runs
from ..tasks.translate import MAX_BEAM, DataConfig, DecodeConfig, TranslateConfig
from ..tasks.translation_models import ModelConfig
from ..train.checkpoint import save_checkpoint
from . import exporter, importer
from .imported_run import read_checkpoint_tokenizer, read_weights, write_hf_tokenizer
from .spm import is_marian_spm, marian_tokenizers
from .vocabulary import renumbered, seqlab_order

# seqlab activation -> transformers' activation_function on export; "swish" is the name OPUS-MT checkpoints use
TO_HF_ACTIVATION = {"relu": "relu", "gelu": "gelu", "silu": "swish"}
FROM_HF_ACTIVATION = {"relu": "relu", "gelu": "gelu", "swish": "silu", "silu": "silu"}  # on import
TARGET_TOKENIZER = "target_tokenizer"  # the subdirectory of an export holding the target side's tokenizer

# How a tensor meets the residual stream, which Marian orders differently (module docstring).
READS, WRITES, NORM = "reads", "writes", "norm"
ATTENTION = {"w_q": ("q_proj", READS), "w_k": ("k_proj", READS), "w_v": ("v_proj", READS),
             "w_o": ("out_proj", WRITES)}
FEED_FORWARD = {"ff.linear1": ("fc1", READS), "ff.linear2": ("fc2", WRITES)}


def layer_names(n_layers: int, n_decoder_layers: int) -> dict[str, tuple[str, str]]:
    """seqlab module -> (MarianMTModel module, how it meets the residual stream), for the layers."""
    names: dict[str, tuple[str, str]] = {}
    for i in range(n_layers):
        ours, theirs = f"encoder.layers.{i}.", f"model.encoder.layers.{i}."
        names.update({f"{ours}self_attn.{o}": (f"{theirs}self_attn.{t}", k) for o, (t, k) in ATTENTION.items()})
        names.update({ours + o: (theirs + t, k) for o, (t, k) in FEED_FORWARD.items()})
        names.update({f"{ours}norm1": (f"{theirs}self_attn_layer_norm", NORM),
                      f"{ours}norm2": (f"{theirs}final_layer_norm", NORM)})
    for i in range(n_decoder_layers):
        ours, theirs = f"decoder.layers.{i}.", f"model.decoder.layers.{i}."
        names.update({f"{ours}self_attn.{o}": (f"{theirs}self_attn.{t}", k) for o, (t, k) in ATTENTION.items()})
        names.update({f"{ours}cross_attn.{o}": (f"{theirs}encoder_attn.{t}", k) for o, (t, k) in ATTENTION.items()})
        names.update({ours + o: (theirs + t, k) for o, (t, k) in FEED_FORWARD.items()})
        names.update({f"{ours}norm1": (f"{theirs}self_attn_layer_norm", NORM),
                      f"{ours}norm2": (f"{theirs}encoder_attn_layer_norm", NORM),
                      f"{ours}norm3": (f"{theirs}final_layer_norm", NORM)})
    return names


def marian_order(d_model: int) -> Tensor:
    """Marian's dimension k is seqlab's ``order[k]``: seqlab's sines (even dimensions), then its cosines."""
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


def marian_table(n_positions: int, d_model: int) -> Tensor:
    """Marian's (and Pegasus's) sinusoidal table, (n_positions, d_model): §3.5's in Marian's order."""
    return sinusoidal_table(n_positions, d_model)[:, marian_order(d_model)]


def moved(tensor: Tensor, kind: str, kind_of_tensor: str, order: Tensor) -> Tensor:
    """``tensor`` (a ``.weight`` or ``.bias``) with the residual stream's dimensions taken in ``order``."""
    if kind == READS:
        return tensor[:, order] if kind_of_tensor == "weight" else tensor
    return tensor[order]  # WRITES: the output rows and the bias; NORM: gain and bias


def layer_tensors(model: Transformer) -> dict[str, Tensor]:
    """The encoder's and decoder's layers (and a pre-LN stack's final LayerNorms: Pegasus's
    ``layer_norm``) under MarianMTModel's names, which Pegasus shares, in its dimension order."""
    c = model.config
    s = {name: t.detach().float() for name, t in model.state_dict().items()}
    names = layer_names(c.n_layers, c.n_decoder_layers or c.n_layers)
    if c.norm_first:
        names |= {f"{stack}.norm": (f"model.{stack}.layer_norm", NORM) for stack in ("encoder", "decoder")}
    order = marian_order(c.d_model)
    return {f"{theirs}.{part}": moved(s[f"{ours}.{part}"], kind, part, order)
            for ours, (theirs, kind) in names.items() for part in ("weight", "bias")}


def to_marian_tensors(model: Transformer) -> dict[str, Tensor]:
    """The Transformer's weights under MarianMTModel's names and in its dimension order."""
    c = model.config
    order = marian_order(c.d_model)
    out = layer_tensors(model)
    source = model.src_embed.embedding.weight.detach()[:, order]  # (V_src, D)
    target = model.tgt_embed.embedding.weight.detach()[:, order]  # (V_tgt, D)
    if c.share_embeddings:  # under each name: with tie_word_embeddings=false transformers ties none of them
        for name in ("shared", "encoder.embed_tokens", "decoder.embed_tokens"):
            out[f"model.{name}.weight"] = source
    else:
        out["model.encoder.embed_tokens.weight"], out["model.decoder.embed_tokens.weight"] = source, target
    if not c.tie_output:
        out["lm_head.weight"] = model.generator.weight.detach()[:, order]
    out["final_logits_bias"] = model.generator.bias.detach().unsqueeze(0)  # (1, V)
    return {name: t.float().contiguous().clone() for name, t in out.items()}


# --- export ---------------------------------------------------------------------------------------

def unlike_hf(c: TransformerConfig) -> list[str]:
    """The settings of a translation Transformer that neither Marian (post-LN) nor Pegasus (pre-LN) has an
    equivalent for, as "name=value (why)"."""
    problems = []
    if c.positional != "sinusoidal":
        problems.append(f"model.positional={c.positional} (Marian and Pegasus add the sinusoidal table; "
                        f"mBART's learned positions come with a LayerNorm over the embeddings that seqlab has not)")
    if c.activation not in TO_HF_ACTIVATION:
        problems.append(f"model.activation={c.activation}")
    if not c.src_embedding_scale or c.src_embedding_norm:
        problems.append("model.init (a source side read as a masked LM reads it: embeddings not scaled by "
                        "√d_model, or LayerNorm'd)")
    return problems


def hf_config(model_type: str, c: TransformerConfig) -> dict[str, Any]:
    """MarianConfig's or PegasusConfig's config.json (their keys are the same but for the vocabulary's)."""
    architecture = {"marian": "MarianMTModel", "pegasus": "PegasusForConditionalGeneration"}[model_type]
    return {
        "architectures": [architecture], "model_type": model_type, "tie_word_embeddings": c.tie_output,
        "d_model": c.d_model, "encoder_layers": c.n_layers, "decoder_layers": c.n_decoder_layers or c.n_layers,
        "encoder_attention_heads": c.n_heads, "decoder_attention_heads": c.n_heads,
        "encoder_ffn_dim": c.d_ff, "decoder_ffn_dim": c.d_ff, "activation_function": TO_HF_ACTIVATION[c.activation],
        "max_position_embeddings": c.max_len, "scale_embedding": True, "dropout": c.dropout,
        "attention_dropout": c.dropout if c.attention_dropout is None else c.attention_dropout,
        "activation_dropout": c.dropout if c.ff_dropout is None else c.ff_dropout,
        "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0, "init_std": 0.02, "is_encoder_decoder": True,
        "use_cache": True, "dtype": "float32",
        # seqlab's decoder starts from <bos>, ends at <eos>, and is never made to end at its length limit
        "pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "decoder_start_token_id": BOS_ID,
        "forced_eos_token_id": None,
    }


def tokenizer_roles(tokenizer: Tokenizer, with_bos: bool) -> dict[str, str]:
    """HF's pad/bos/eos/unk_token: the tokens at seqlab's ids for them (whatever their names)."""
    roles = {"pad_token": PAD_ID, "eos_token": EOS_ID, "unk_token": UNK_ID}
    if with_bos:
        roles["bos_token"] = BOS_ID
    return {role: tokenizer.id_to_token(i) for role, i in roles.items() if tokenizer.id_to_token(i) is not None}


@exporter("hf", "translate")
def export_translation(run: Path, out: Path) -> str:
    """A sinusoidal translation Transformer -> a MarianMTModel directory (post-LN) or a
    PegasusForConditionalGeneration one (pre-LN), with the source tokenizer and the target's."""
    info, model = runs.load_trained(run, "translate", "a translation run")
    if not isinstance(model, Transformer):
        arch = info["config"].get("model", {}).get("arch", "transformer")
        raise UserError(f"{run} cannot be written for transformers: model.arch={arch} is not a Transformer")
    c = model.config
    if problems := unlike_hf(c):
        raise UserError(f"{run} cannot be written for transformers: {'; '.join(problems)} has no equivalent in "
                        f"Marian (post-LN) or Pegasus (pre-LN)")
    source = load_tokenizer(run / "src_tokenizer.json", c.src_vocab_size)
    target = load_tokenizer(run / "tgt_tokenizer.json", c.tgt_vocab_size)
    roles = tokenizer_roles(source, with_bos=False)  # by name: Pegasus's layout moves the source's ids
    if c.norm_first:
        from .pegasus import pegasus_layout

        config, tensors, source, vocabulary = pegasus_layout(model, source)
        what = f"PegasusForConditionalGeneration (one vocabulary of {vocabulary}: the target's, then the source's)"
    else:
        config = hf_config("marian", c) | {"vocab_size": c.src_vocab_size, "decoder_vocab_size": c.tgt_vocab_size,
                                           "share_encoder_decoder_embeddings": c.share_embeddings}
        tensors = to_marian_tensors(model)
        what = f"MarianMTModel (vocabularies {c.src_vocab_size} -> {c.tgt_vocab_size})"
    write_json(out / "config.json", config, indent=2)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    decode = info["config"].get("decode", {})  # max_length counts the decoder's start token
    write_json(out / "generation_config.json", {
        "decoder_start_token_id": BOS_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID,
        "forced_eos_token_id": None, "max_length": min(decode.get("max_output_len", c.max_len), c.max_len) + 1,
        "num_beams": decode.get("beam_size", 1)}, indent=2)
    write_hf_tokenizer(source, out, c.max_len, roles)
    (out / TARGET_TOKENIZER).mkdir()
    write_hf_tokenizer(target, out / TARGET_TOKENIZER, c.max_len, tokenizer_roles(target, with_bos=True))
    return (f"{what}, {c.n_layers}+{c.n_decoder_layers or c.n_layers} layers, d_model {c.d_model}, {c.n_heads} "
            f"heads, with the source tokenizer and the target's in {TARGET_TOKENIZER}/, for AutoModelForSeq2SeqLM "
            f"and AutoTokenizer")


# --- import ---------------------------------------------------------------------------------------

# MarianConfig's defaults, for the keys a config.json may leave out.
MARIAN_DEFAULTS: dict[str, Any] = {
    "vocab_size": 58101, "decoder_vocab_size": None, "max_position_embeddings": 1024, "encoder_layers": 12,
    "encoder_ffn_dim": 4096, "encoder_attention_heads": 16, "decoder_layers": 12, "decoder_ffn_dim": 4096,
    "decoder_attention_heads": 16, "activation_function": "gelu", "d_model": 1024, "dropout": 0.1,
    "attention_dropout": 0.0, "activation_dropout": 0.0, "decoder_start_token_id": 58100, "scale_embedding": False,
    "pad_token_id": 58100, "eos_token_id": 0, "share_encoder_decoder_embeddings": True, "tie_word_embeddings": True,
}
SIZES = ("vocab_size", "decoder_vocab_size", "max_position_embeddings", "encoder_layers", "decoder_layers",
         "encoder_ffn_dim", "encoder_attention_heads", "d_model")
# The shape of the model: transformers writes these model-specific keys into every config.json it saves
# (only keys equal to PretrainedConfig's own defaults are left out), so a config without one is not whole.
REQUIRED = ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
            "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "max_position_embeddings")


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # json's true is no layer count


def read_marian_config(source: Path, defaults: dict[str, Any] = MARIAN_DEFAULTS, what: str = "Marian"
                       ) -> dict[str, Any]:
    """config.json with MarianConfig's ``defaults`` (or PegasusConfig's) filled in; a UserError naming
    every setting seqlab's Transformer cannot compute."""
    given = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if missing := [key for key in REQUIRED if key not in given]:
        raise UserError(f"{source / 'config.json'} has no {', '.join(missing)}: a {what} config.json gives the "
                        f"model's shape")
    values = {**defaults, **given}
    values["decoder_vocab_size"] = values["decoder_vocab_size"] or values["vocab_size"]
    if isinstance(values["eos_token_id"], list):
        values["eos_token_id"] = values["eos_token_id"][0] if values["eos_token_id"] else None
    bad = ([f"{k}={values[k]!r} (a positive integer)" for k in SIZES if not (is_integer(values[k]) and values[k] > 0)]
           + [f"{k}={values[k]!r} (an integer)" for k in ("pad_token_id", "eos_token_id", "decoder_start_token_id")
              if not is_integer(values[k]) and not (k == "decoder_start_token_id" and values[k] is None)]
           + [f"{k}={values[k]!r} (a number)" for k in ("dropout", "attention_dropout", "activation_dropout")
              if isinstance(values[k], bool) or not isinstance(values[k], (int, float))])
    if bad:
        raise UserError(f"{source / 'config.json'}: {'; '.join(bad)}: it is not a {what} config")
    problems = [
        (values["activation_function"] not in FROM_HF_ACTIVATION,
         f"activation_function={values['activation_function']!r} (seqlab reads {', '.join(FROM_HF_ACTIVATION)})"),
        (not values["scale_embedding"], "scale_embedding=false (seqlab scales embeddings by √d_model)"),
        (values["encoder_attention_heads"] != values["decoder_attention_heads"],
         "encoder_attention_heads ≠ decoder_attention_heads"),
        (values["encoder_ffn_dim"] != values["decoder_ffn_dim"], "encoder_ffn_dim ≠ decoder_ffn_dim"),
        (values["d_model"] % values["encoder_attention_heads"] != 0, "d_model not divisible by the heads"),
        (values["share_encoder_decoder_embeddings"] and values["decoder_vocab_size"] != values["vocab_size"],
         "shared embeddings with decoder_vocab_size ≠ vocab_size"),
    ]
    if refused := [why for problem, why in problems if problem]:
        raise UserError(f"{source}: seqlab's translation Transformer has no equivalent of {'; '.join(refused)}")
    return values


def read_tokenizers(source: Path, hf: dict[str, Any]) -> tuple[Tokenizer, Tokenizer, str]:
    """The source side's tokenizer (tokenizer.json) and the target side's (``target_tokenizer/``, as seqlab
    exports it, else the same one), or, without tokenizer.json, Marian's own SentencePiece files
    (:mod:`.spm`); each checked against its embedding's rows; and a note for the user (or "")."""
    path = source / "tokenizer.json"
    target_path = source / TARGET_TOKENIZER / "tokenizer.json"
    note = ""
    if path.is_file():
        src = read_checkpoint_tokenizer(path)
        tgt = read_checkpoint_tokenizer(target_path) if target_path.is_file() else src
    elif is_marian_spm(source):
        src, tgt, note = marian_tokenizers(source)
        path = target_path = source / "vocab.json"
        if (source / "target_vocab.json").is_file() and tgt.get_vocab_size() != src.get_vocab_size():
            target_path = source / "target_vocab.json"
    else:
        raise UserError(f"{source} has no tokenizer.json (nor Marian's source.spm, target.spm and vocab.json)")
    for tokenizer, side, where in ((src, "vocab_size", path),
                                   (tgt, "decoder_vocab_size", path if tgt is src else target_path)):
        largest = ids_needed(tokenizer) - 1
        if largest >= hf[side]:
            hint = f" (a separate target vocabulary needs {TARGET_TOKENIZER}/tokenizer.json)" if tgt is src else ""
            raise UserError(f"{source}: the tokenizer has ids up to {largest}, past the model's {side} "
                            f"{hf[side]}{hint}")
        # seqlab pads either side with id 0 and ends a target with id 2; an export names the tokens there
        for role in ("pad_token_id", "eos_token_id") if tokenizer is tgt else ("pad_token_id",):
            if tokenizer.id_to_token(hf[role]) is None:
                raise UserError(f"{where} has no token at {role} {hf[role]}; add the model's "
                                f"{'padding' if role == 'pad_token_id' else 'end'} token to it (as an added token)")
    return src, tgt, note



def unknown_id(tokenizer: Tokenizer) -> int | None:
    name = getattr(tokenizer.model, "unk_token", None)
    if name is None and getattr(tokenizer.model, "unk_id", None) is not None:
        return tokenizer.model.unk_id
    return tokenizer.token_to_id(name) if name else tokenizer.token_to_id("<unk>")


def marian_tensor(tensors: dict[str, Tensor], *names: str) -> Tensor:
    """The first of ``names`` the checkpoint holds (with or without MarianMTModel's ``model.`` prefix)."""
    for name in names:
        for key in (name, name.removeprefix("model.")):
            if key in tensors:
                return tensors[key].float()
    raise UserError(f"the weights lack {names[0]}")


@importer("marian")
def import_marian(source: Path, run: Path) -> str:
    """A MarianMTModel checkpoint directory -> a seqlab translate run computing the same logits."""
    return import_translation(source, run, read_marian_config(source), "Marian", pre_ln=False)


def import_translation(source: Path, run: Path, hf: dict[str, Any], what: str, pre_ln: bool) -> str:
    """A Marian (post-LN) or Pegasus (``pre_ln``, with the final LayerNorms) checkpoint, its config.json
    read as ``hf`` -> a seqlab translate run computing the same logits."""
    tensors = read_weights(source)
    held = sum(t.numel() for t in tensors.values())
    for side in ("vocab_size", "decoder_vocab_size"):  # before anything is sized by them
        if hf[side] * hf["d_model"] > held:
            raise DamagedFileError(source / "config.json", f"its {side} {hf[side]:,} embedding rows of "
                                   f"d_model {hf['d_model']} are more numbers than the weights hold ({held:,})",
                                   "it does not describe these weights")
    src_tokenizer, tgt_tokenizer, note = read_tokenizers(source, hf)
    # transformers 5 ties a "shared" Marian's embeddings only together with its output layer
    # (tie_word_embeddings): what the checkpoint holds says whether the two sides read one matrix
    sides = [tensors.get(f"model.{side}.embed_tokens.weight", tensors.get(f"{side}.embed_tokens.weight"))
             for side in ("encoder", "decoder")]
    shared = bool(hf["share_encoder_decoder_embeddings"]) and (None in sides or torch.equal(*sides))
    start = hf["decoder_start_token_id"]
    try:
        target = seqlab_order(hf["decoder_vocab_size"], hf["pad_token_id"], start, hf["eos_token_id"],
                              unknown_id(tgt_tokenizer))
        src_numbering = target if shared else seqlab_order(hf["vocab_size"], hf["pad_token_id"], start,
                                                           hf["eos_token_id"], unknown_id(src_tokenizer))
    except UserError as error:
        raise UserError(f"{source}: {error}") from None
    n_layers, n_decoder = hf["encoder_layers"], hf["decoder_layers"]
    config = TransformerConfig(
        len(src_numbering.order), len(target.order), d_model=hf["d_model"], n_heads=hf["encoder_attention_heads"],
        n_layers=n_layers, n_decoder_layers=None if n_decoder == n_layers else n_decoder, d_ff=hf["encoder_ffn_dim"],
        dropout=float(hf["dropout"]), max_len=hf["max_position_embeddings"], norm_first=pre_ln, positional="sinusoidal",
        activation=FROM_HF_ACTIVATION[hf["activation_function"]], share_embeddings=shared,
        tie_output=bool(hf["tie_word_embeddings"]),
        pad_id=PAD_ID, attention_dropout=float(hf["attention_dropout"]), ff_dropout=float(hf["activation_dropout"]))
    back = torch.argsort(marian_order(config.d_model))  # seqlab's dimension j is Marian's back[j]
    for stack in ("encoder", "decoder"):  # Pegasus saves its table, which must be the one seqlab computes
        table = tensors.get(f"model.{stack}.embed_positions.weight", tensors.get(f"{stack}.embed_positions.weight"))
        if table is not None and not torch.allclose(table.float(), marian_table(*table.shape), atol=1e-4):
            raise UserError(f"{source}: {stack}.embed_positions.weight is not the sinusoidal table (seqlab computes "
                            f"its own)")
    names = layer_names(n_layers, n_decoder)
    if pre_ln:
        names |= {f"{stack}.norm": (f"model.{stack}.layer_norm", NORM) for stack in ("encoder", "decoder")}
    try:
        state = {f"{ours}.{part}": moved(marian_tensor(tensors, f"{theirs}.{part}"), kind, part, back)
                 for ours, (theirs, kind) in names.items() for part in ("weight", "bias")}
        src_rows = marian_tensor(tensors, "model.encoder.embed_tokens.weight", "model.shared.weight")
        tgt_rows = marian_tensor(tensors, "model.decoder.embed_tokens.weight", "model.shared.weight")
        output = tgt_rows if config.tie_output else marian_tensor(tensors, "lm_head.weight")
        bias = tensors.get("final_logits_bias", torch.zeros(1, hf["decoder_vocab_size"])).float().reshape(-1)
        state["src_embed.embedding.weight"] = src_numbering.rows(src_rows)[:, back]
        state["tgt_embed.embedding.weight"] = target.rows(tgt_rows)[:, back]
        state["generator.weight"] = target.rows(output)[:, back]
        state["generator.bias"] = target.bias(bias)
        model = Transformer(config)
        model.load_state_dict({name: t.contiguous() for name, t in state.items()}, strict=True)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None
    except (IndexError, RuntimeError) as error:  # shapes that config.json does not give
        said = str(error).splitlines()[-1].strip()
        raise UserError(f"{source}: the weights do not fit config.json: {said}") from None
    # a source's </s>, where its tokenizer appends one, is kept; seqlab appends a target's <eos> itself
    src_tokenizer = renumbered(src_tokenizer, src_numbering.new_id(), src_numbering.added)
    tgt_tokenizer = renumbered(tgt_tokenizer, target.new_id(), target.added, keep_post_processor=False)
    write_translate_run(run, model, src_tokenizer, tgt_tokenizer, f"Hugging Face {what} {source.resolve()}",
                        decode_config(source))
    if note:  # once the run is made: a refusal after the tokenizers is still the one line it must be
        print(f"note: {note}", file=sys.stderr)
    return (f"a seqlab translation run from the {what} in {source} ({n_layers}+{n_decoder} layers, d_model "
            f"{config.d_model}, vocabularies {config.src_vocab_size} -> {config.tgt_vocab_size})")


def decode_config(source: Path) -> DecodeConfig:
    """generation_config.json's beam width and length limit (less its start token), where it gives them."""
    path, default = source / "generation_config.json", DecodeConfig()
    try:
        generation = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not JSON") from None
    if not isinstance(generation, dict):
        raise UserError(f"{path} is not a generation config (a JSON object)")
    beams, length = generation.get("num_beams"), generation.get("max_length")
    return DecodeConfig(beam_size=min(beams, MAX_BEAM) if isinstance(beams, int) and beams >= 1 else default.beam_size,
                        alpha=default.alpha,
                        max_output_len=length - 1 if isinstance(length, int) and length > 1 else default.max_output_len)


def write_translate_run(run: Path, model: Transformer, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer,
                        imported_from: str, decode: DecodeConfig) -> None:
    """``run`` as ``seqlab train translate`` lays one out, its best checkpoint ``model`` (no optimizer state:
    it can be used, not resumed)."""
    c = model.config
    kind = {"WordLevel": "word"}.get(type(tgt_tokenizer.model).__name__, "bpe")
    config = TranslateConfig(
        data=DataConfig(tokenizer=kind, vocab_size=max(c.tgt_vocab_size, 8), max_len=c.max_len),
        model=ModelConfig(arch="transformer", d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers,
                          n_decoder_layers=c.n_decoder_layers, d_ff=c.d_ff, dropout=c.dropout,
                          attention_dropout=c.attention_dropout, ff_dropout=c.ff_dropout, norm_first=c.norm_first,
                          positional="sinusoidal", activation=c.activation, tie_output=c.tie_output),
        decode=decode)
    runs.write_run(run, "translate", to_dict(config))
    save_tokenizer(src_tokenizer, run / "src_tokenizer.json")
    save_tokenizer(tgt_tokenizer, run / "tgt_tokenizer.json")
    save_checkpoint(run / "checkpoints" / "best", model, {"imported_from": imported_from})
