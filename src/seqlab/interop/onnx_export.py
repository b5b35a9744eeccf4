"""``seqlab export RUN --format onnx``: a trained run as ONNX graphs that ONNX Runtime runs without
seqlab (or PyTorch), with its tokenizer and an ``onnx.json`` naming every graph's inputs and outputs.

    lm          prefill.onnx  ids (B, T) -> logits (B, T, V), present_key_i / present_value_i (B, H, T, d_head)
                decode.onnx   ids (B, 1), past_key_i / past_value_i (B, H, P, d_head)
                              -> logits (B, 1, V), present_key_i / present_value_i (B, H, P + 1, d_head)
    translate   encoder.onnx  src (B, S) -> memory (B, S, D), memory_mask (B, 1, S)
                decoder.onnx  memory, memory_mask, tgt (B, T) starting with <bos> -> logits (B, T, V)
    classify    model.onnx    ids (B, T) -> logits (B, K)
    mlm         model.onnx    ids (B, T) -> logits (B, T, V)
    vision      model.onnx    images (B, C, H, W) -> logits (B, K)
    detect      model.onnx    images (B, C, S, S) -> logits (B, Q, K + 1) (the last column "no object"),
                              boxes (B, Q, 4) normalised (cx, cy, w, h)
    forecast    model.onnx    x (B, input_len, C), standardised -> forecast (B, horizon, C),
                              or (B, horizon, C, Q) for a run with quantiles (onnx.json's ``quantiles``)

Batch and sequence axes are dynamic. The graphs come from ``torch.export`` (``torch.onnx.export``
with ``dynamo=True``), in inference mode: dropout off. Refused in one line: recurrent language models,
RNN and convolutional translation models, the LSTM classifier (packed sequences), linear text
baselines (not PyTorch), and relative position representations (``model.positional='relative'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..models.classifiers import LSTMClassifier
from ..models.language_model import LMCache, TransformerLM
from ..models.transformer import Transformer
from ..nn import KVCache
from ..tasks import run_dir as runs
from . import exporter
from .imported_run import special_tokens

META_FILE = "onnx.json"
OPSET = 18
MAX_BATCH = 4096


class _Forward(nn.Module):
    """``model(x)`` alone: the plain output, not the optional attention weights."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _LMPrefill(nn.Module):
    """ids (B, T) -> logits and, per layer, the keys and values of every position (B, H, T, d_head)."""

    def __init__(self, model: TransformerLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cache = self.model.new_cache()
        logits = self.model(ids, cache)
        return (logits, *(c.key for c in cache), *(c.value for c in cache))


class _LMDecode(nn.Module):
    """One new id per row and the keys and values so far (plain tensors, not seqlab's KVCache) ->
    its logits and the keys and values with it appended."""

    def __init__(self, model: TransformerLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.model.layers)
        cache = LMCache()
        for key, value in zip(past[:n], past[n:]):
            layer = KVCache()
            layer.key, layer.value = key, value  # (B, H, P, d_head)
            cache.append(layer)
        logits = self.model(ids, cache)  # (B, 1, V)
        return (logits, *(c.key for c in cache), *(c.value for c in cache))


class _Detection(nn.Module):
    """A DETR's class logits and boxes (the last decoder layer's), without the auxiliary outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(images)
        return out["logits"], out["boxes"]


class _Encoder(nn.Module):
    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(src)


class _Decoder(nn.Module):
    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, memory: torch.Tensor, memory_mask: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.model.decode(tgt, memory, memory_mask)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic_shapes: tuple) -> dict[str, Any]:
    """Writes ``module`` (in eval mode) to ``path`` as one self-contained ONNX file; -> its entry in
    ``onnx.json``. A model torch.export cannot trace is a UserError."""
    module.eval()
    for package in ("onnx", "onnxscript"):  # torch.onnx's exporter writes through them
        if importlib.util.find_spec(package) is None:
            raise UserError(f"--format onnx needs the {package} package: pip install 'seqlab[onnx]'")
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, dynamo=True, input_names=inputs, output_names=outputs,
                                        dynamic_shapes=dynamic_shapes, opset_version=OPSET, verbose=False,
                                        optimize=True)
            program.save(str(path), external_data=False)
    except Exception as error:  # torch.export's errors are many pages long: say the first line
        raise UserError(f"cannot export {path.stem} to ONNX: {_cause(error)}") from None
    return {"file": path.name, "inputs": inputs, "outputs": outputs}


def _cause(error: Exception) -> str:
    """torch.onnx's error is pages long; its summary line says what failed."""
    lines = str(error).strip().splitlines()
    summary = [m.group(1) for line in lines if (m := re.match(r"<class '[^']+'>: (.+)", line))]
    return (summary or lines or [type(error).__name__])[0][:300]


@contextlib.contextmanager
def _quiet():
    """torch.onnx prints its progress and torch.export its warnings: the CLI prints one line."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def special_ids(tokenizer_file: Path) -> dict[str, int]:
    """The ids of the special tokens a user of the graphs needs (``special_tokens``' roles) that the
    exported tokenizer has."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    return {role: tokenizer.token_to_id(token) for role, token in special_tokens(tokenizer).items()}


def _write_meta(out: Path, task: str, graphs: dict[str, dict[str, Any]], **extra: Any) -> None:
    """onnx.json: the graphs' inputs and outputs, the special token ids of the (target) tokenizer."""
    tokenizer = extra.get("tgt_tokenizer") or extra.get("tokenizer")
    specials = {"special_ids": special_ids(out / tokenizer)} if tokenizer else {}
    meta = {"task": task, "opset": OPSET, "graphs": graphs, **specials, **extra}
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _copy(run: Path, out: Path, *names: str) -> None:
    for name in names:
        if not (run / name).is_file():
            raise UserError(f"{run} has no {name}; is it a complete run directory?")
        shutil.copyfile(run / name, out / name)


def _refuse_relative(model: nn.Module, what: str) -> None:
    if getattr(model.config, "positional", None) == "relative":
        raise UserError(f"--format onnx cannot export {what} with model.positional='relative' "
                        f"(its relative-position tables do not trace with dynamic lengths)")


def _batch() -> torch.export.Dim:
    return torch.export.Dim("batch", max=MAX_BATCH)


def _transformer(run: Path, task: str, cls: type, kind: str) -> nn.Module:
    """The run's model, if it is a ``cls`` (a Transformer ``kind``) without relative positions."""
    info, model = runs.load_trained(run, task, f"a {kind} run")
    if not isinstance(model, cls):
        raise UserError(f"--format onnx exports Transformer {kind}s; {run} holds a "
                        f"{type(model).__name__} (model.arch={info['config'].get('model', {}).get('arch')!r})")
    _refuse_relative(model, f"a {kind}")
    return model


@exporter("onnx", "lm")
def export_lm(run: Path, out: Path) -> str:
    model = _transformer(run, "lm", TransformerLM, "language model")
    c = model.config
    n, H, d_head, V = c.n_layers, c.n_heads, c.d_model // c.n_heads, model.vocab_size
    keys, values = [f"present_key_{i}" for i in range(n)], [f"present_value_{i}" for i in range(n)]
    past = [f"past_key_{i}" for i in range(n)] + [f"past_value_{i}" for i in range(n)]
    batch = _batch()
    length = torch.export.Dim("length", min=2, max=model.max_len)
    ids = torch.randint(4, V, (2, min(5, model.max_len)))
    prefill = _export(_LMPrefill(model), (ids,), out / "prefill.onnx", ["ids"], ["logits", *keys, *values],
                      ({0: batch, 1: length},))
    cached = torch.export.Dim("past", min=1, max=model.max_len - 1)
    ids = torch.randint(4, V, (2, 1))
    state = tuple(torch.randn(2, H, min(4, model.max_len - 1), d_head) for _ in range(2 * n))
    decode = _export(_LMDecode(model), (ids, *state), out / "decode.onnx", ["ids", *past], ["logits", *keys, *values],
                     ({0: batch}, tuple({0: batch, 2: cached} for _ in state)))
    _copy(run, out, "tokenizer.json")
    _write_meta(out, "lm", {"prefill": prefill, "decode": decode}, tokenizer="tokenizer.json",
                max_len=model.max_len, n_layers=n, n_heads=H, d_head=d_head, vocab_size=V,
                usage="prefill the prompt, then feed decode one id at a time with the present keys and values "
                      "as the next past ones, while the positions stay within max_len")
    return f"wrote prefill.onnx and decode.onnx ({n} layers, key/value cache as inputs and outputs)"


@exporter("onnx", "translate")
def export_translate(run: Path, out: Path) -> str:
    model = _transformer(run, "translate", Transformer, "translation model")
    c = model.config
    batch = _batch()
    src_len = torch.export.Dim("src_len", max=c.max_len)
    tgt_len = torch.export.Dim("tgt_len", max=c.max_len)
    src = torch.randint(4, c.src_vocab_size, (2, min(6, c.max_len)))
    encoder = _export(_Encoder(model), (src,), out / "encoder.onnx", ["src"], ["memory", "memory_mask"],
                      ({0: batch, 1: src_len},))
    with torch.no_grad():
        memory, memory_mask = model.encode(src)
    tgt = torch.randint(4, c.tgt_vocab_size, (2, min(5, c.max_len)))
    decoder = _export(_Decoder(model), (memory, memory_mask, tgt), out / "decoder.onnx",
                      ["memory", "memory_mask", "tgt"], ["logits"],
                      ({0: batch, 1: src_len}, {0: batch, 2: src_len}, {0: batch, 1: tgt_len}))
    _copy(run, out, "src_tokenizer.json", "tgt_tokenizer.json")
    _write_meta(out, "translate", {"encoder": encoder, "decoder": decoder}, src_tokenizer="src_tokenizer.json",
                tgt_tokenizer="tgt_tokenizer.json", max_len=c.max_len,
                usage="src: the source's ids (no <bos>/<eos>), rows padded with pad; decoder: tgt starts with "
                      "bos, take the last position's argmax until eos")
    return "wrote encoder.onnx and decoder.onnx"


def _export_single(run: Path, out: Path, task: str, model: nn.Module, example: torch.Tensor, input_name: str,
                   output: str, dynamic: dict[int, Any], files: tuple[str, ...], **extra: Any) -> str:
    graph = _export(_Forward(model), (example,), out / "model.onnx", [input_name], [output], (dynamic,))
    _copy(run, out, *files)
    _write_meta(out, task, {"model": graph}, **extra)
    return f"wrote model.onnx ({type(model).__name__}: {input_name} -> {output})"


@exporter("onnx", "classify")
def export_classify(run: Path, out: Path) -> str:
    from ..tasks.classify import TextClassifierRun

    classifier = TextClassifierRun(run)
    if classifier.model is None:
        raise UserError(f"{run} holds a linear baseline ({classifier.config.model.arch}), not a PyTorch model; "
                        f"--format onnx exports the neural classifiers")
    model = classifier.model
    if isinstance(model, LSTMClassifier):  # pack_padded_sequence sorts rows by length: no static graph
        raise UserError(f"--format onnx cannot export {run}'s LSTM classifier (model.arch='lstm': its packed "
                        f"variable-length sequences do not trace); the transformer and conv1d ones export")
    _refuse_relative(model, "a classifier")
    max_len = classifier.config.data.max_len
    ids = torch.randint(4, classifier.tokenizer.get_vocab_size(), (2, min(6, max_len)))
    length = torch.export.Dim("length", min=2, max=max_len)
    return _export_single(run, out, "classify", model, ids, "ids", "logits", {0: _batch(), 1: length},
                          ("tokenizer.json", "classes.json"), tokenizer="tokenizer.json", classes="classes.json",
                          max_len=max_len,
                          usage="ids: the text's token ids (rows padded with pad); softmax(logits) follows classes.json")


@exporter("onnx", "mlm")
def export_mlm(run: Path, out: Path) -> str:
    from ..tasks.masked_lm import MaskedLanguageModel

    mlm = MaskedLanguageModel.load(run)
    model = mlm.model
    _refuse_relative(model, "a masked language model")
    length = torch.export.Dim("length", min=2, max=model.max_len)
    ids = torch.randint(4, mlm.tokenizer.get_vocab_size(), (2, min(6, model.max_len)))
    return _export_single(run, out, "mlm", model, ids, "ids", "logits", {0: _batch(), 1: length},
                          ("tokenizer.json",), tokenizer="tokenizer.json", max_len=model.max_len, usage="ids: [CLS] the text's ids [SEP]; logits at each position")


@exporter("onnx", "vision")
def export_vision(run: Path, out: Path) -> str:
    info, model = runs.load_trained(run, "vision", "an image-classification run")
    c = model.config
    runs.read_classes(run, c.n_classes)  # copied beside the graph: checked first
    image = torch.rand(2, c.channels, c.image_size, c.image_size)
    return _export_single(run, out, "vision", model, image, "images", "logits", {0: _batch()},
                          ("classes.json",), classes="classes.json",
                          image_shape=[c.channels, c.image_size, c.image_size],
                          usage="images: (B, C, H, W) floats as seqlab reads them; softmax(logits) follows classes.json")


@exporter("onnx", "detect")
def export_detect(run: Path, out: Path) -> str:
    from ..tasks.detect import checked_categories

    info, model = runs.load_trained(run, "detect", "a detection run")
    c = model.config
    checked_categories(run / "categories.json", c.n_classes)  # copied beside the graph: checked first
    images = torch.rand(2, c.channels, c.image_size, c.image_size)
    graph = _export(_Detection(model), (images,), out / "model.onnx", ["images"], ["logits", "boxes"],
                    ({0: _batch()},))
    _copy(run, out, "categories.json")
    _write_meta(out, "detect", {"model": graph}, categories="categories.json",
                image_shape=[c.channels, c.image_size, c.image_size],
                usage="images: (B, C, S, S) floats in [0, 1], each image resized to S as seqlab reads it; per query, "
                      "softmax(logits) over categories.json's classes in order and a last 'no object' column, and "
                      "its box (cx, cy, w, h) as fractions of the image")
    return f"wrote model.onnx ({type(model).__name__}: images -> logits, boxes)"


@exporter("onnx", "forecast")
def export_forecast(run: Path, out: Path) -> str:
    from ..tasks.forecast import Forecast

    forecast = Forecast.load(run)
    model, d = forecast.model, forecast.config.data
    if not isinstance(model, nn.Module):
        raise UserError(f"{run} holds no PyTorch model; --format onnx exports the neural forecasters")
    if forecast.past or forecast.future:
        raise UserError(f"--format onnx does not export {run}: its forecaster reads covariates "
                        f"(data.past_cols, data.future_cols, data.calendar); runs without them export")
    if d.id_col:  # onnx.json describes one scaler; series.json holds one per id
        raise UserError(f"--format onnx does not export {run}: it was trained on a long-format CSV (--id-col "
                        f"{d.id_col}) and standardises each id by its own scaler; one-series runs export")
    x = torch.randn(2, d.input_len, len(forecast.columns))
    levels = {"quantiles": list(forecast.levels)} if forecast.levels else {}
    return _export_single(run, out, "forecast", model, x, "x", "forecast", {0: _batch()}, ("series.json",),
                          series="series.json", input_len=d.input_len, horizon=d.horizon,
                          columns=forecast.columns, targets=forecast.targets, **levels,
                          usage="x: the last input_len rows, standardised with series.json's scaler; "
                                "the forecast is standardised too"
                                + ("; its last axis holds the quantiles' levels in order" if levels else ""))
