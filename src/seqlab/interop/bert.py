"""BERT (Devlin et al., 2019) in Hugging Face ``transformers``' layout: a seqlab masked LM written as
``BertForMaskedLM``, a classifier started from one as ``BertForSequenceClassification``, and a BERT
checkpoint directory read into a seqlab masked-LM run.

    seqlab export runs/mlm --format hf --out hf/mlm        # AutoModelForMaskedLM.from_pretrained("hf/mlm")
    seqlab export runs/sst --format hf --out hf/sst        # AutoModelForSequenceClassification
    seqlab import hf hf/bert-tiny --out runs/bert-tiny     # then predict, eval, explore, classify --init

The two layouts compute the same function once their tensors are renamed, with three differences:

- BERT adds a segment (token type) embedding to every token. seqlab reads one segment, so an export
  writes zero rows (types 0 and 1 both add nothing), and an import adds type 0's row into every row of
  the position table: the sum seqlab computes is then BERT's for a single segment.
- ``BertForSequenceClassification`` classifies ``tanh(W h_[CLS] + b)`` (BERT's pooler); a seqlab
  classifier has it with ``model.pooler=true``, and only such a one is exported.
- BERT's feed-forward network has no dropout inside it: an import sets ``ff_dropout`` to 0; an export
  cannot carry seqlab's (it changes training only, never what a trained model computes).

Only the files are written and read (safetensors and JSON): ``transformers`` is not needed to convert.
Settings BERT has no equivalent for (pre-LN, sinusoidal or relative positions, ReLU, a classifier
pooling a learned vector or the mean) are refused in one line naming them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.processors import TemplateProcessing
from torch import Tensor

from ..data.tokenizer import BERT_SPECIALS, CONTINUATION, PAD_ID, ids_needed, load_tokenizer
from ..errors import UserError
from ..io import write_json
from ..models import MaskedLM, MaskedLMConfig
from ..tasks import run_dir as runs
from ..tasks.masked_lm import MLMConfig, MLMDataConfig, MLMModelConfig
from . import exporter, importer
from .imported_run import read_weights, write_hf_tokenizer, write_imported_run

PAD, UNK, CLS, SEP, MASK = BERT_SPECIALS
TOKEN_TYPE = "bert.embeddings.token_type_embeddings.weight"
HF_WEIGHTS = "model.safetensors"

# seqlab module -> transformers module (each with .weight and, but for the embeddings, .bias)
EMBEDDINGS = {"embedding": "bert.embeddings.word_embeddings",
              "position.embedding": "bert.embeddings.position_embeddings",
              "embedding_norm": "bert.embeddings.LayerNorm"}
LAYER = {"self_attn.w_q": "attention.self.query", "self_attn.w_k": "attention.self.key",
         "self_attn.w_v": "attention.self.value", "self_attn.w_o": "attention.output.dense",
         "norm1": "attention.output.LayerNorm", "ff.linear1": "intermediate.dense", "ff.linear2": "output.dense",
         "norm2": "output.LayerNorm"}
MLM_HEAD = {"head_transform.0": "cls.predictions.transform.dense",
            "head_transform.2": "cls.predictions.transform.LayerNorm"}
CLASSIFIER_HEAD = {"pooler.0": "bert.pooler.dense", "head": "classifier"}


def tensor_names(n_layers: int, head: dict[str, str]) -> dict[str, str]:
    """seqlab parameter name -> transformers parameter name, for an encoder of ``n_layers`` and ``head``."""
    modules = dict(EMBEDDINGS)
    for i in range(n_layers):
        modules.update({f"layers.{i}.{ours}": f"bert.encoder.layer.{i}.{theirs}" for ours, theirs in LAYER.items()})
    modules.update(head)
    names = {f"{ours}.{kind}": f"{theirs}.{kind}" for ours, theirs in modules.items() for kind in ("weight", "bias")}
    for embedding in ("embedding", "position.embedding"):
        del names[f"{embedding}.bias"]
    return names


def unlike_bert(settings: dict[str, Any]) -> list[str]:
    """The settings of a seqlab Transformer that BERT has no equivalent for, as "name=value" (none: [])."""
    want = {"norm_first": False, "positional": "learned", "activation": "gelu", "embedding_norm": True,
            "causal": False, "pool": "first", "pooler": True}
    return [f"{name}={settings[name]}" for name, value in want.items() if name in settings and settings[name] != value]


def refuse(run: Path, what: str, problems: list[str], hint: str) -> None:
    if problems:
        raise UserError(f"{run}: cannot export as {what}: {', '.join(problems)} has no BERT equivalent ({hint})")


# --- out of seqlab ---------------------------------------------------------------------------------

def hf_config(architecture: str, c: Any, attention_dropout: float, eps: float, pad_id: int,
              **extra: Any) -> dict[str, Any]:
    """transformers' BertConfig, as config.json holds it, for a seqlab encoder config ``c``."""
    return {"architectures": [architecture], "model_type": "bert", "vocab_size": c.vocab_size,
            "hidden_size": c.d_model, "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads,
            "intermediate_size": c.d_ff, "hidden_act": "gelu", "hidden_dropout_prob": c.dropout,
            "attention_probs_dropout_prob": attention_dropout, "max_position_embeddings": c.max_len,
            "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": eps, "pad_token_id": pad_id,
            "tie_word_embeddings": True, **extra}


def write_hf(out: Path, state: dict[str, Tensor], names: dict[str, str], config: dict[str, Any],
             tokenizer: Tokenizer, max_len: int) -> None:
    """model.safetensors (renamed, with zero token-type rows), config.json and the tokenizer files."""
    tensors = {theirs: state[ours].detach().float().contiguous() for ours, theirs in names.items()}
    tensors[TOKEN_TYPE] = torch.zeros(2, config["hidden_size"])
    save_file(tensors, str(out / HF_WEIGHTS), metadata={"format": "pt"})
    write_json(out / "config.json", config, indent=2)
    write_tokenizer(out, tokenizer, max_len)


def write_tokenizer(out: Path, tokenizer: Tokenizer, max_len: int) -> None:
    """tokenizer.json wrapping a text as [CLS] text [SEP] (a pair as [CLS] A [SEP] B [SEP], B of type 1),
    as BERT's does, and tokenizer_config.json naming the special tokens: PreTrainedTokenizerFast."""
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    ids = {token: tokenizer.token_to_id(token) for token in BERT_SPECIALS}
    if None in ids.values():
        raise UserError(f"the run's tokenizer lacks {', '.join(t for t, i in ids.items() if i is None)}")
    tokenizer.post_processor = TemplateProcessing(single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
                                                  special_tokens=[(CLS, ids[CLS]), (SEP, ids[SEP])])
    write_hf_tokenizer(tokenizer, out, max_len, {"pad_token": PAD, "unk_token": UNK, "cls_token": CLS,
                                                 "sep_token": SEP, "mask_token": MASK},
                       model_input_names=["input_ids", "token_type_ids", "attention_mask"])


@exporter("hf", "mlm")
def export_mlm(run: Path, out: Path) -> str:
    """A seqlab masked LM -> BertForMaskedLM: post-LN, learned positions and GELU only."""
    _, model = runs.load_trained(run, "mlm", "a masked-language-model run")
    c = model.config
    refuse(run, "BertForMaskedLM", unlike_bert(vars(c)),
           "BERT is post-LN, model.norm_first=false, with learned positions and GELU")
    names = tensor_names(c.n_layers, MLM_HEAD) | {"lm_head.bias": "cls.predictions.bias"}
    dropout = c.dropout if c.attention_dropout is None else c.attention_dropout
    config = hf_config("BertForMaskedLM", c, dropout, c.layer_norm_eps, c.pad_id)
    write_hf(out, model.state_dict(), names, config, load_tokenizer(run / "tokenizer.json", c.vocab_size), c.max_len)
    return (f"BertForMaskedLM, {c.n_layers} layers of width {c.d_model}, vocabulary "
            f"{c.vocab_size}, {c.max_len} positions, and its tokenizer")


@exporter("hf", "classify")
def export_classifier(run: Path, out: Path) -> str:
    """A seqlab Transformer classifier started from a masked LM, with BERT's pooler ->
    BertForSequenceClassification; its classes are config.json's id2label."""
    arch = runs.read_run(run)["config"].get("model", {}).get("arch", "transformer")
    if arch != "transformer":
        raise UserError(f"{run}: cannot export as BertForSequenceClassification: a {arch} classifier is no "
                        f"Transformer (train --model transformer --init MLM_RUN --set model.pooler=true)")
    _, model = runs.load_trained(run, "classify", "a classification run")
    c = model.config
    refuse(run, "BertForSequenceClassification", unlike_bert(vars(c)),
           "BERT classifies its [CLS] token through a tanh pooler: train --init MLM_RUN with "
           "--set model.pooler=true, from a post-LN masked LM")
    classes = [str(name) for name in runs.read_classes(run, c.n_classes)]
    names = tensor_names(c.n_layers, CLASSIFIER_HEAD)
    config = hf_config("BertForSequenceClassification", c, c.dropout, c.layer_norm_eps, c.pad_id,
                       classifier_dropout=None,
                       id2label={str(i): name for i, name in enumerate(classes)},
                       label2id={name: i for i, name in enumerate(classes)})
    write_hf(out, model.state_dict(), names, config, load_tokenizer(run / "tokenizer.json", c.vocab_size), c.max_len)
    return (f"BertForSequenceClassification over {len(classes)} classes "
            f"({', '.join(classes)}), {c.n_layers} layers of width {c.d_model}, and its tokenizer")


# --- into seqlab -----------------------------------------------------------------------------------

def bert_weights(source: Path) -> dict[str, Tensor]:
    """The checkpoint's tensors (``read_weights``), each named as BertForMaskedLM names it ("bert." in
    front of the encoder's; a BertModel's have none; old checkpoints' LayerNorm gamma/beta renamed)."""
    tensors = read_weights(source)
    renamed = {}
    for name, tensor in tensors.items():
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if name.startswith(("embeddings.", "encoder.", "pooler.")):
            name = "bert." + name
        renamed[name] = tensor
    return renamed


def read_tokenizer(source: Path, config: dict[str, Any]) -> Tokenizer:
    """The checkpoint's WordPiece tokenizer (tokenizer.json, or BERT's vocab.txt), without the [CLS] …
    [SEP] wrapping, padding or truncation: seqlab's masked LM adds [CLS] and [SEP] itself."""
    if (source / "tokenizer.json").is_file():
        try:
            tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        except Exception as error:
            raise UserError(f"{source / 'tokenizer.json'} is not a tokenizers file: {error}") from None
        if not isinstance(tokenizer.model, models.WordPiece):
            raise UserError(f"{source / 'tokenizer.json'} is a {type(tokenizer.model).__name__} tokenizer; "
                            f"a BERT checkpoint's is WordPiece")
        state = json.loads(tokenizer.to_str())
        state["post_processor"] = state["padding"] = state["truncation"] = None
        tokenizer = Tokenizer.from_str(json.dumps(state))
    elif (source / "vocab.txt").is_file():
        lowercase = True
        if (source / "tokenizer_config.json").is_file():
            lowercase = bool(json.loads((source / "tokenizer_config.json").read_text()).get("do_lower_case", True))
        tokenizer = Tokenizer(models.WordPiece.from_file(str(source / "vocab.txt"), unk_token=UNK,
                                                         continuing_subword_prefix=CONTINUATION))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
        tokenizer.add_special_tokens([t for t in BERT_SPECIALS if tokenizer.token_to_id(t) is not None])
    else:
        raise UserError(f"{source} has no tokenizer (tokenizer.json or vocab.txt)")
    missing = [token for token in BERT_SPECIALS if tokenizer.token_to_id(token) is None]
    if missing:
        raise UserError(f"{source}: the tokenizer lacks {', '.join(missing)}; seqlab's masked LM needs "
                        f"{', '.join(BERT_SPECIALS)}")
    if tokenizer.token_to_id(PAD) != PAD_ID or config.get("pad_token_id", PAD_ID) not in (PAD_ID, None):
        raise UserError(f"{source}: {PAD} must be id {PAD_ID} (seqlab pads with it); the tokenizer has "
                        f"{tokenizer.token_to_id(PAD)}, config.json's pad_token_id {config.get('pad_token_id')}")
    largest = ids_needed(tokenizer) - 1
    if tokenizer.get_vocab_size() != config["vocab_size"] or largest >= config["vocab_size"]:
        raise UserError(f"{source}: the tokenizer's {tokenizer.get_vocab_size()} tokens (ids up to "
                        f"{largest}) are not the model's {config['vocab_size']} "
                        f"embedding rows; seqlab needs one id per row")
    return tokenizer


def check_bert(source: Path, config: dict[str, Any]) -> None:
    """One UserError naming every setting of config.json that seqlab's MaskedLM cannot compute."""
    want = {"hidden_act": "gelu", "position_embedding_type": "absolute", "is_decoder": False,
            "add_cross_attention": False}
    problems = [f"{name}={config[name]!r}" for name, value in want.items() if config.get(name, value) != value]
    needed = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings")
    if missing := [name for name in needed if name not in config]:
        raise UserError(f"{source / 'config.json'} lacks {', '.join(missing)}")
    if wrong := [f"{name}={config[name]!r}" for name in needed
                 if not isinstance(config[name], int) or isinstance(config[name], bool)]:  # "88": a string
        raise UserError(f"{source / 'config.json'}: {', '.join(wrong)} must be whole numbers")
    if problems:
        raise UserError(f"{source}: cannot import {', '.join(problems)}: seqlab's masked LM is BERT's "
                        f"post-LN encoder with absolute positions and GELU")


@importer("bert")
def import_bert(source: Path, out: Path) -> str:
    """A BERT checkpoint with its masked-LM head (BertForMaskedLM, BertForPreTraining) -> a seqlab mlm run
    whose model computes the same logits over a single segment."""
    hf = json.loads((source / "config.json").read_text(encoding="utf-8"))
    check_bert(source, hf)
    tokenizer = read_tokenizer(source, hf)
    tensors = bert_weights(source)
    L, D = hf["num_hidden_layers"], hf["hidden_size"]
    if "cls.predictions.bias" not in tensors:
        raise UserError(f"{source} has no masked-LM head (cls.predictions); seqlab imports BERT checkpoints "
                        f"with theirs: BertForMaskedLM, BertForPreTraining")
    decoder = tensors.get("cls.predictions.decoder.weight")
    embedding = tensors.get("bert.embeddings.word_embeddings.weight")
    if decoder is not None and embedding is not None and not torch.equal(decoder, embedding):
        raise UserError(f"{source}: the output layer is not tied to the word embeddings; seqlab's masked LM "
                        f"ties them (tie_word_embeddings)")
    dropout = float(hf.get("hidden_dropout_prob", 0.1))
    try:
        c = MaskedLMConfig(hf["vocab_size"], d_model=D, n_heads=hf["num_attention_heads"], n_layers=L,
                           d_ff=hf["intermediate_size"], max_len=hf["max_position_embeddings"], dropout=dropout,
                           attention_dropout=float(hf.get("attention_probs_dropout_prob", dropout)), ff_dropout=0.0,
                           norm_first=False, activation="gelu", positional="learned", pad_id=PAD_ID,
                           layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)))
        model = MaskedLM(c)
    except ValueError as error:
        raise UserError(f"{source}: {error}") from None
    names = tensor_names(L, MLM_HEAD) | {"lm_head.bias": "cls.predictions.bias"}
    if missing := sorted(theirs for theirs in [*names.values(), TOKEN_TYPE] if theirs not in tensors):
        raise UserError(f"{source}: the weights lack {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}")
    state = {ours: tensors[theirs].float() for ours, theirs in names.items()}
    # BERT adds token type 0's embedding to every token of a single segment: fold it into the positions.
    state["position.embedding.weight"] = state["position.embedding.weight"] + tensors[TOKEN_TYPE][0].float()
    state["lm_head.weight"] = state["embedding.weight"]
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        said = str(error).splitlines()[-1].strip()
        raise UserError(f"{source}: the weights do not fit config.json: {said}") from None
    write_mlm_run(out, model, tokenizer, source)
    return (f"imported {source.name}: BERT, {L} layers of width {D}, vocabulary {c.vocab_size}, {c.max_len} "
            f"positions -> a seqlab mlm run (predict, eval, explore, train classify --init)")


def write_mlm_run(out: Path, model: MaskedLM, tokenizer: Tokenizer, source: Path) -> None:
    """A seqlab mlm run at ``out`` holding ``model`` as its best checkpoint: run.json (the model settings
    that made it; data.text empty: it was not trained here), tokenizer.json, checkpoints/best (whose state
    names where the weights came from)."""
    c = model.config
    config = replace(MLMConfig(),
                     data=replace(MLMDataConfig(), vocab_size=max(c.vocab_size, 32), block_size=c.max_len - 2),
                     model=MLMModelConfig(d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers, d_ff=c.d_ff,
                                          dropout=c.dropout, attention_dropout=c.attention_dropout, ff_dropout=0.0,
                                          positional="learned", activation="gelu", norm_first=False))
    write_imported_run(out, "mlm", config, model, tokenizer, str(source.resolve()))
