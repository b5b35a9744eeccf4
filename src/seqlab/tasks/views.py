"""What the explorer shows for the built-in tasks: a trained run's output for one input and the
attention weights the same call returned, as plain lists ready for JSON. Each task's ``explore``
method (``seqlab.tasks.task.Task``) calls its function here."""

from __future__ import annotations

import io
import math
from typing import Any

import torch

from ..data.tokenizer import EOS_ID, PAD_ID
from ..errors import DataError, UserError
from ..models.quantiles import central_intervals
from ..nn import recording_scores


def grid(maps: list[torch.Tensor], digits: int = 4) -> list[list[list[list[float | None]]]]:
    """Per layer (1, H, Tq, Tk) -> [layer][head][query][key], rounded for a small payload; None where a
    value is not finite (a masked logit's -inf, which JSON cannot carry)."""
    return [[[[round(v, digits) if math.isfinite(v) else None for v in row] for row in head]
             for head in m[0].float().tolist()] for m in maps]


MAX_SCORED_PAIRS = 128 * 128  # logits go along up to 128 tokens of self-attention (the answer doubles)


def tokens(tokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.id_to_token(i) or "?" for i in ids]


def view(queries: list[str], keys: list[str], weights: list[torch.Tensor],
         scores: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """One attention view; ``scores``, when given, the logits Q·Kᵀ/√d_k behind ``weights`` (the same
    calls, recorded with ``seqlab.nn.recording_scores``)."""
    shown = {"queries": queries, "keys": keys, "weights": grid(weights)}
    if scores is not None and len(queries) * len(keys) <= MAX_SCORED_PAIRS:
        if len(scores) != len(weights):  # a model whose layers do not all go through the recorder
            raise RuntimeError(f"{len(scores)} score maps recorded for {len(weights)} attention maps")
        shown["scores"] = grid(scores, digits=3)
    return shown


def ranked(probabilities: dict[str, float]) -> str:
    return "  ".join(f"{name} {p:.3f}" for name, p in sorted(probabilities.items(), key=lambda item: -item[1]))


def translation(translator, text: str, beam: int | None) -> dict[str, Any]:
    """The translation, then one teacher-forced pass over it for the encoder, decoder and cross-attention
    (Vaswani et al. 2017 §3.2.3), or an RNN's or a convolutional model's alignment."""
    limit = translator.config.data.max_len - 1
    src_ids = translator.src_tokenizer.encode(text).ids
    if len(src_ids) > limit:
        raise UserError(f"the input has {len(src_ids)} tokens; this model reads at most {limit}")
    out_ids = [i for i in translator.translate_ids([src_ids], beam)[0] if i != PAD_ID] or [EOS_ID]  # untrained: may be empty
    attention = translator.teacher_forced_attention(src_ids, out_ids)
    source, output = tokens(translator.src_tokenizer, src_ids), tokens(translator.tgt_tokenizer, out_ids)
    views = {}
    if "encoder" in attention:  # the Transformer
        views["encoder self-attention"] = view(source, source, attention["encoder"])
        views["decoder self-attention"] = view(output, output, attention["decoder"])
        views["cross-attention"] = view(output, source, attention["cross"])
    elif "cross" in attention:  # an RNN's or a convolutional model's alignment, one head a layer
        views["alignment"] = view(output, source, attention["cross"])
    return {"output": translator.tgt_tokenizer.decode([i for i in out_ids if i > 3]), "views": views}


def generation(lm, text: str, max_new_tokens: int) -> dict[str, Any]:
    """A greedy continuation and the causal self-attention over prompt and continuation."""
    limit = lm.model.max_len or 1024
    prompt = lm.encode_prompt(text)[0].tolist()
    if len(prompt) + max_new_tokens > limit:
        raise UserError(f"prompt ({len(prompt)} tokens) plus {max_new_tokens} new ones exceed this model's "
                        f"{limit}-token context")
    ids = lm.model.generate(torch.tensor([prompt], device=lm.device), max_new_tokens, temperature=0)[0].tolist()
    with torch.no_grad(), recording_scores() as scores:
        _, maps = lm.model(torch.tensor([ids], device=lm.device), need_weights=True)
    shown = tokens(lm.tokenizer, ids)
    return {"output": lm.tokenizer.decode(ids[len(prompt):]),
            "views": {"causal self-attention": view(shown, shown, maps, scores)}}


def next_tokens(lm, text: str, temperature: float, top_k: int, append: int | None = None,
                given: list[int] | None = None) -> dict[str, Any]:
    """At every position of ``text`` (with token ``append`` added at its end, one step of generation),
    the model's top-k next tokens under softmax(logits / temperature): what temperature sampling draws
    from, before top-k sampling (Fan et al. 2018) keeps the k most probable. ``given``: the ids of an
    earlier answer, read instead of ``text``'s encoding while they decode to ``text`` — generated tokens
    stay as generated (byte-level BPE would merge or split some if the text were encoded again)."""
    vocab = lm.tokenizer.get_vocab_size()
    if not text.strip():
        raise UserError("type an input first")
    for i in [*(given or []), *([] if append is None else [append])]:
        if not 0 <= i < vocab:
            raise UserError(f"token id {i} is not in this model's vocabulary of {vocab}")
    ids = list(given) if given and lm.tokenizer.decode(given) == text else lm.encode_prompt(text)[0].tolist()
    if append is not None:
        ids.append(append)
        text = lm.tokenizer.decode(ids)
    limit = lm.model.max_len or 1024
    if len(ids) > limit:
        raise UserError(f"the text has {len(ids)} tokens; this model's context is {limit}")
    with torch.no_grad():
        out = lm.model(torch.tensor([ids], device=lm.device))
    logits = (out[0] if isinstance(out, tuple) else out)[0].float().cpu()  # (T, V)
    probs = (logits / temperature).softmax(-1)
    top = probs.topk(min(top_k, vocab), dim=-1)
    return {"text": text, "ids": ids, "tokens": tokens(lm.tokenizer, ids), "temperature": temperature, "top_k": top_k,
            "positions": [[{"id": i, "token": lm.tokenizer.id_to_token(i) or "?", "text": lm.tokenizer.decode([i]),
                            "p": round(p, 6)} for p, i in zip(ps, ix)]
                          for ps, ix in zip(top.values.tolist(), top.indices.tolist())]}


def classification(classifier, text: str) -> dict[str, Any]:
    """Class probabilities and, for the Transformer classifier, its self-attention ([CLS] first)."""
    from .classify import encode

    ids = encode(classifier.tokenizer, [text], classifier.config.data.max_len, training=False)[0]
    probs = classifier.probabilities([text])[0]
    result: dict[str, Any] = {"output": ranked(probs), "views": {}, "probabilities": probs}
    model = classifier.model
    if hasattr(model, "layers"):
        with torch.no_grad(), recording_scores() as scores:
            _, maps = model(torch.tensor([ids], device=next(model.parameters()).device), need_weights=True)
        shown = (["[CLS]"] if model.pool == "cls" else []) + tokens(classifier.tokenizer, ids)
        result["views"]["self-attention"] = view(shown, shown, maps, scores)
    return result


def image(classifier, data: bytes) -> dict[str, Any]:
    """Class probabilities, attention rollout (Abnar & Zuidema 2020) and each head's [CLS] row."""
    from ..models.vit import attention_rollout

    try:
        x = classifier.prepare(io.BytesIO(data))
    except DataError:
        raise UserError("the file is not an image this server can read") from None
    model = classifier.model
    with torch.no_grad():
        logits, maps = model(x.to(next(model.parameters()).device), need_weights=True)
    probs = logits.float().softmax(-1)[0].cpu()
    side = model.image_size // model.patch_size
    rows = [str(r) for r in range(side)]
    rollout = attention_rollout(maps).view(1, 1, side, side)
    per_head = [w[:, :, 0, 1:].reshape(1, -1, side, side) for w in maps]  # the [CLS] row
    shown = {"attention rollout over patches": view(rows, rows, [rollout]),
             "[CLS] attention over patches, per head": view(rows, rows, per_head)}
    for grid_view in shown.values():  # rows and columns of the image, not queries and keys
        grid_view["token_lines"] = False
    return {"output": ranked(dict(zip(classifier.classes, probs.tolist()))), "views": shown}


def time_span(start, end, daily: bool) -> str:
    """A short label for the steps from ``start`` to ``end`` (pandas Timestamps): "06-01 04:00–11:00",
    "06-01 20:00–06-02 03:00", or, for a ``daily`` series, dates alone ("06-01–06-08")."""
    first = start.strftime("%m-%d" if daily else "%m-%d %H:%M")
    if end == start:
        return first
    if daily or end.normalize() != start.normalize():
        return f"{first}–{end.strftime('%m-%d' if daily else '%m-%d %H:%M')}"
    return f"{first}–{end.strftime('%H:%M')}"


def forecast(run, when: str) -> dict[str, Any]:
    """The forecast made at time ``when`` from the L rows up to it (in the run's own CSV), the truth
    where the file has it, and the attention over those past steps."""
    import pandas as pd

    from .forecast import read_series, unscale
    from .forecast_calibration import forecast_after

    d, model = run.config.data, run.model
    series = read_series(d)
    try:
        stamp = pd.Timestamp(when.strip())
    except ValueError:
        raise UserError(f"{when!r} is not a date and time") from None
    times = series.timestamps
    if pd.isna(stamp):
        raise UserError(f"{when!r} is not a date and time")
    if (stamp.tzinfo is None) != (times.tz is None):
        zone = "has no time zone" if stamp.tzinfo is None else "has a time zone"
        raise UserError(f"{when!r} {zone} and the file's times {'have one' if times.tz is not None else 'have none'}: "
                        f"give it as the file does, like {times[-1]}")
    if stamp > times[-1]:
        raise UserError(f"{when} is after the file's last row ({times[-1]}): give a time in the file")
    end = int(times.searchsorted(stamp, side="right"))  # rows up to and including ``when``
    if end < d.input_len:
        raise UserError(f"{when} leaves {end} rows before it; the model reads {d.input_len}")
    scaled = run.scaler.transform(series.values)
    x = torch.as_tensor(scaled[end - d.input_len : end], dtype=torch.float32, device=run.device)[None]
    target = series.columns.index(d.target)
    attends = hasattr(model, "layers")  # the Transformer forecasters
    if run.future:  # a model with future covariates reads them over the horizon rows: the file must have them
        if end + d.horizon > len(series.values):
            raise UserError(f"{when} leaves {len(series.values) - end} rows after it; the model reads its "
                            f"future covariates over the next {d.horizon}")
    future = [torch.as_tensor(scaled[end : end + d.horizon, run.future], dtype=torch.float32,
                              device=run.device)[None]] if run.future else []  # (1, H, F)
    with torch.no_grad():
        y, maps = model(x, need_weights=True) if attends else (None, [])
    if y is None or run.levels:  # as predict forecasts: quantiles calibrated on the windows before ``when``
        batch = {"x": x, **({"future": future[0]} if future else {})}
        y = forecast_after(model, run.config, scaled[:end], batch, run.device, run.future)
    y = y[0].float().cpu().numpy()  # (H, C), or (H, C, Q) quantiles: the median is the forecast shown
    quantiles = y if run.levels else None
    if run.levels:
        y = y[..., run.levels.index(0.5)]
    prediction = unscale(run.scaler, y)[:, target]
    bands = {}  # each central interval the levels span, as the shaded band under the forecast
    for name, (low, high) in central_intervals(run.levels).items():
        bands[name] = [unscale(run.scaler, quantiles[..., k])[:, target].tolist() for k in (low, high)]
    truth = series.values[end : end + d.horizon, target]
    stamps = series.timestamps
    step = stamps[end - 1] - stamps[end - 2] if end > 1 else pd.Timedelta(hours=1)
    times = list(stamps[end - d.input_len : end]) + [stamps[end - 1] + step * (k + 1) for k in range(d.horizon)]
    result: dict[str, Any] = {
        "output": f"{d.target}, next {d.horizon} steps: " + ", ".join(f"{v:.3g}" for v in prediction[:12])
                  + (" …" if d.horizon > 12 else ""),
        "series": {"times": [str(t) for t in times],
                   "history": series.values[end - d.input_len : end, target].tolist(),
                   "forecast": prediction.tolist(), "truth": truth.tolist(), "bands": bands},
        "views": {}}
    if attends:  # attention each past step (or patch) received, averaged over queries
        maps = [w.float().mean(dim=(0, 2), keepdim=True).squeeze(0).unsqueeze(0) for w in maps]  # per layer (1, H, 1, P)
        past = times[: d.input_len]
        daily = all(t == t.normalize() for t in past)
        if hasattr(model, "patchify"):  # patch p covers steps p·stride … p·stride + patch_len - 1
            last = len(past) - 1  # the padding repeats the last step
            spans = [(min(p * model.stride, last), min(p * model.stride + model.patch_len - 1, last))
                     for p in range(maps[0].size(-1))]
            units, positions = "patches", [time_span(past[a], past[b], daily) for a, b in spans]
        else:
            units, positions = "time steps", [time_span(t, t, daily) for t in past]
        shown = view(["mean"], positions, maps)
        shown["plain_labels"] = True  # times, not tokens: spaces stay spaces
        result["views"][f"attention over past {units}"] = shown
    return result


def fill_in(mlm, text: str) -> dict[str, Any]:
    """A masked language model: each [MASK]'s likeliest fillers, and its self-attention over
    [CLS] text [SEP] (every token reads both sides)."""
    row = mlm.encode(text)  # (1, T + 2)
    with torch.no_grad(), recording_scores() as scores:
        _, maps = mlm.model(row, need_weights=True)
    shown = tokens(mlm.tokenizer, row[0].tolist())
    fills = mlm.fill(text) if "[MASK]" in shown else []
    output = "\n".join(f"[MASK] {n}: " + "  ".join(f"{t} {p:.3f}" for t, p in fillers)
                       for n, fillers in enumerate(fills, 1))
    return {"output": output or "write [MASK] in the input to see what the model fills in",
            "views": {"self-attention": view(shown, shown, maps, scores)}}
