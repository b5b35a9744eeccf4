"""What the explorer shows, computed from a run: the model's output for an input and the attention
weights behind it, as plain lists ready for JSON. One function per task."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..data.batching import pad
from ..data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from ..errors import UserError
from ..tasks import run_dir as runs


def _grid(weights: list[torch.Tensor]) -> list[list[list[list[float]]]]:
    """Per layer (1, H, Tq, Tk) -> [layer][head][query][key], rounded for a small payload."""
    return [[[[round(v, 4) for v in row] for row in head] for head in w[0].float().tolist()] for w in weights]


def _tokens(tokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.id_to_token(i) or "?" for i in ids]


class Inspector:
    """Loads a run once; ``infer`` answers the page's requests."""

    def __init__(self, run: str | Path) -> None:
        self.run = Path(run)
        self.task = runs.read_run(self.run)["task"]
        if self.task == "translate":
            from ..tasks.translate import Translator

            self.engine = Translator.load(self.run)
            self.model = self.engine.model
            self.max_len = self.engine.config.data.max_len - 1
        elif self.task == "lm":
            from ..tasks.language_model import LanguageModel

            self.engine = LanguageModel.load(self.run)
            self.model = self.engine.model
            self.max_len = self.model.max_len or 1024
        elif self.task == "classify":
            from ..tasks.classify import TextClassifierRun

            self.engine = TextClassifierRun(self.run)
            if self.engine.model is None:
                raise UserError(f"{self.run} is a linear {self.engine.linear.arch} baseline, with no attention to "
                                f"show; score texts with seqlab predict {self.run} TEXT")
            self.model = self.engine.model
            self.max_len = self.engine.config.data.max_len
        elif self.task == "vision":
            from ..tasks.vision import ImageClassifier

            self.engine = ImageClassifier.load(self.run)
            self.model = self.engine.model
            self.max_len = 0
        elif self.task == "forecast":
            from ..tasks.forecast import Forecast

            self.engine = Forecast.load(self.run)
            self.model = self.engine.model
            self.max_len = self.engine.config.data.input_len
        elif self.task.startswith("compare-"):
            raise UserError(f"{self.run} compares several models, each a run of its own: "
                            f"seqlab explore {self.run}/MODEL")
        else:
            raise UserError(f"{self.run} is a {self.task} run, which the explorer cannot show")

    def describe(self) -> dict[str, Any]:
        config = asdict(self.model.config)
        return {"task": self.task, "model": type(self.model).__name__, "max_input_tokens": self.max_len,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "config": {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool)) or v is None}}

    def infer(self, text: str, beam: int | None = None, max_new_tokens: int = 40,
              image: bytes | None = None) -> dict[str, Any]:
        if self.task == "vision":
            if not image:
                raise UserError("choose an image file first")
            return self._see(image)
        if not text.strip():
            raise UserError("type an input first" if self.task != "forecast" else "give a date and time")
        if self.task == "translate":
            return self._translate(text, beam)
        if self.task == "classify":
            return self._classify(text)
        if self.task == "forecast":
            return self._forecast(text)
        return self._generate(text, max_new_tokens)

    def _translate(self, text: str, beam: int | None) -> dict[str, Any]:
        e = self.engine
        src_ids = e.src_tokenizer.encode(text).ids
        if len(src_ids) > self.max_len:
            raise UserError(f"the input has {len(src_ids)} tokens; this model reads at most {self.max_len}")
        out_ids = [i for i in e.translate_ids([src_ids], beam)[0] if i != PAD_ID] or [EOS_ID]  # untrained: may be empty
        with torch.no_grad():
            _, attention = self.model(pad([src_ids]), torch.tensor([[BOS_ID, *out_ids[:-1]]]), need_weights=True)
        source, output = _tokens(e.src_tokenizer, src_ids), _tokens(e.tgt_tokenizer, out_ids)
        views = {}
        if "encoder" in attention:  # the Transformer
            views["encoder self-attention"] = {"queries": source, "keys": source, "weights": _grid(attention["encoder"])}
            views["decoder self-attention"] = {"queries": output, "keys": output, "weights": _grid(attention["decoder"])}
            views["cross-attention"] = {"queries": output, "keys": source, "weights": _grid(attention["cross"])}
        elif "cross" in attention:  # an RNN's or a convolutional model's alignment, one head a layer
            views["alignment"] = {"queries": output, "keys": source, "weights": _grid(attention["cross"])}
        return {"output": e.tgt_tokenizer.decode([i for i in out_ids if i > 3]), "views": views}

    def _generate(self, text: str, max_new_tokens: int) -> dict[str, Any]:
        lm = self.engine
        prompt = lm.encode_prompt(text)[0].tolist()
        if len(prompt) + max_new_tokens > self.max_len:
            raise UserError(f"prompt ({len(prompt)} tokens) plus {max_new_tokens} new ones exceed this model's "
                            f"{self.max_len}-token context")
        ids = self.model.generate(torch.tensor([prompt]), max_new_tokens, temperature=0)[0].tolist()
        with torch.no_grad():
            _, maps = self.model(torch.tensor([ids]), need_weights=True)
        tokens = _tokens(lm.tokenizer, ids)
        return {"output": lm.tokenizer.decode(ids[len(prompt):]),
                "views": {"causal self-attention": {"queries": tokens, "keys": tokens, "weights": _grid(maps)}}}

    def _classify(self, text: str) -> dict[str, Any]:
        from ..tasks.classify import encode

        ids = encode(self.engine.tokenizer, [text], self.max_len)[0]
        probs = self.engine.probabilities([text])[0]
        ranked = sorted(probs.items(), key=lambda item: -item[1])
        result: dict[str, Any] = {"output": "  ".join(f"{name} {p:.3f}" for name, p in ranked), "views": {},
                                  "probabilities": probs}
        if hasattr(self.model, "layers"):  # the Transformer classifier: its self-attention
            with torch.no_grad():
                _, maps = self.model(torch.tensor([ids]), need_weights=True)
            tokens = (["[CLS]"] if self.model.pool == "cls" else []) + _tokens(self.engine.tokenizer, ids)
            result["views"]["self-attention"] = {"queries": tokens, "keys": tokens, "weights": _grid(maps)}
        return result

    def _see(self, image: bytes) -> dict[str, Any]:
        import io

        from ..errors import DataError
        from ..models.vit import attention_rollout

        try:
            x = self.engine.prepare(io.BytesIO(image))
        except DataError:
            raise UserError("the file is not an image this server can read") from None
        with torch.no_grad():
            logits, maps = self.model(x, need_weights=True)
        probs = logits.float().softmax(-1)[0]
        grid = self.model.image_size // self.model.patch_size
        rows = [str(r) for r in range(grid)]
        rollout = attention_rollout(maps).view(1, 1, grid, grid)
        per_head = [w[:, :, 0, 1:].reshape(1, -1, grid, grid) for w in maps]  # [CLS] row
        ranked = sorted(zip(self.engine.classes, probs.tolist()), key=lambda item: -item[1])
        return {"output": "  ".join(f"{name} {p:.3f}" for name, p in ranked),
                "views": {"attention rollout over patches": {"queries": rows, "keys": rows, "weights": _grid([rollout])},
                          "[CLS] attention over patches, per head": {"queries": rows, "keys": rows,
                                                                     "weights": _grid(per_head)}}}

    def _forecast(self, when: str) -> dict[str, Any]:
        """The forecast made at time ``when`` from the L rows up to it (in the run's own CSV), the truth
        where the file has it, and the attention over those past steps."""
        import pandas as pd

        from ..data import timeseries as ts

        d = self.engine.config.data
        series = ts.read_series(d.csv, d.date_col, d.target, d.features, d.fill)
        try:
            stamp = pd.Timestamp(when.strip())
        except ValueError:
            raise UserError(f"{when!r} is not a date and time") from None
        end = int(series.timestamps.searchsorted(stamp, side="right"))  # rows up to and including ``when``
        if end < d.input_len:
            raise UserError(f"{when} leaves {end} rows before it; the model reads {d.input_len}")
        scaled = self.engine.scaler.transform(series.values)
        x = torch.as_tensor(scaled[end - d.input_len : end], dtype=torch.float32)[None]
        target = series.columns.index(d.target)
        attends = hasattr(self.model, "layers")  # the Transformer forecasters
        with torch.no_grad():
            y, maps = self.model(x, need_weights=True) if attends else (self.model(x), [])
        y = y[0].float().numpy()
        forecast = self.engine.scaler.inverse_transform(y)[:, target]
        truth = series.values[end : end + d.horizon, target]
        result: dict[str, Any] = {
            "output": f"{d.target}, next {d.horizon} steps: " + ", ".join(f"{v:.3g}" for v in forecast[:12])
                      + (" …" if d.horizon > 12 else ""),
            "series": {"history": series.values[end - d.input_len : end, target].tolist(),
                       "forecast": forecast.tolist(), "truth": truth.tolist()},
            "views": {}}
        if attends:  # attention each past step (or patch) received, averaged over queries
            maps = [w.float().mean(dim=(0, 2), keepdim=True).squeeze(0).unsqueeze(0) for w in maps]  # per layer (1, H, 1, P)
            unit, units = ("patch", "patches") if hasattr(self.model, "patchify") else ("step", "time steps")
            positions = [f"{unit} {i + 1}" for i in range(maps[0].size(-1))]
            result["views"][f"attention over past {units}"] = {"queries": ["mean"], "keys": positions,
                                                               "weights": _grid(maps)}
        return result

    def positional(self, positions: int = 64) -> dict[str, Any]:
        """The encoding added at each position: the sinusoidal table or the learned vectors."""
        from ..nn import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

        module = next((m for m in self.model.modules()
                       if isinstance(m, (LearnedPositionalEmbedding, SinusoidalPositionalEncoding))), None)
        if module is None:
            return {"kind": "none (rotary or recurrent)", "values": []}
        if isinstance(module, LearnedPositionalEmbedding):
            table, kind = module.embedding.weight[:positions], "learned"
        else:
            table, kind = module.encoding(positions), "sinusoidal"
        return {"kind": kind, "values": [[round(v, 3) for v in row] for row in table.detach().float().tolist()]}

    def curves(self) -> list[dict[str, Any]]:
        from ..io import read_metrics

        return list(read_metrics(self.run))
