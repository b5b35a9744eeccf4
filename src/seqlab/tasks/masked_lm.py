"""Masked language modelling (BERT's pre-training, Devlin et al., 2019 §3.1): a text (one file, a
folder of files or a glob pattern, read as the language model reads it) -> a WordPiece tokenizer and
an encoder-only Transformer that fills in masked tokens; masked-token accuracy and perplexity on the
held-out text.

    seqlab train mlm --text corpus.txt [--config RECIPE] [--set key=value ...] [--out RUN_DIR]
    seqlab predict RUN_DIR "the movie was [MASK] good" [--top-k 5]   # the likeliest fillers
    seqlab eval RUN_DIR --text other.txt      # masked-token accuracy and perplexity on another text

The text takes the language model's streaming path (:mod:`seqlab.data.token_stream`): tokenised once
into a memory-mapped file, read as random blocks of ``data.block_size`` tokens, each row [CLS] block
[SEP], corrupted as :mod:`seqlab.data.masking` says — batch n's blocks and masking a function of (seed, n).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from ..config import build, check_model, option, to_dict
from ..data import token_stream
from ..data.masking import IGNORE, Masking, MaskedBlockBatches, evaluation_batches
from ..data.tokenizer import BERT_SPECIALS, check_vocab_size, load_tokenizer, train_wordpiece
from ..data.text import text_start
from ..errors import DataError, UserError
from ..models import MaskedLM, MaskedLMConfig
from ..parallel.config import ParallelConfig
from ..parallel.runtime import SingleProcess, check_layout
from ..train.config import TrainConfig
from ..train.loop import Trainer, move
from . import run_dir as runs, views
from .language_model import check_text_length, open_splits, validation_opening, write_splits
from .task import Flag, Task, register

TASK = "mlm"
PAD, UNK, CLS, SEP, MASK = BERT_SPECIALS


@dataclass
class MLMDataConfig:
    text: str = option("", "a UTF-8 text file to pre-train on, a folder of them or a glob pattern", path=True)
    vocab_size: int = 4000  # WordPiece, trained on the training split; the five special tokens included
    lowercase: bool = True  # BERT's "uncased": lowercase and strip accents before splitting
    valid_fraction: float = 0.1  # the last 10 % of the text validates
    block_size: int = 62  # text tokens a row; the model reads [CLS] block [SEP], two more
    eval_tokens: int = 0  # validation tokens scored at each evaluation; 0 = all of them
    mask_probability: float = 0.15  # of the ordinary tokens, chosen for prediction (§3.1)
    whole_word_masking: bool = False  # choose whole words: a word's ## pieces with its first
    tokenizer_sample_chars: int = 100_000_000  # WordPiece learns from this many leading training characters

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 0.5:
            raise ValueError(f"data.valid_fraction must be in (0, 0.5); got {self.valid_fraction}")
        if self.block_size < 1 or self.vocab_size < 32:
            raise ValueError("data.block_size must be at least 1 and data.vocab_size at least 32")
        check_vocab_size(self.vocab_size)
        if not 0.0 < self.mask_probability < 1.0:
            raise ValueError(f"data.mask_probability must be in (0, 1); got {self.mask_probability}")
        if self.eval_tokens < 0 or self.tokenizer_sample_chars < 1:
            raise ValueError("data.eval_tokens must not be negative, data.tokenizer_sample_chars positive")
        token_stream.check_eval_tokens(self.eval_tokens, self.block_size)


@dataclass
class MLMModelConfig:
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 0  # 0 = 4 · d_model
    dropout: float = 0.1  # BERT's, on the residual stream, the embeddings and (by default) the attention
    attention_dropout: float | None = None  # None = dropout
    ff_dropout: float | None = None  # None = dropout
    positional: Literal["learned", "sinusoidal", "relative"] = "learned"  # relative: Shaw et al. (2018)
    max_relative_position: int = 16  # positional="relative": offsets clipped to [-k, k], k = this
    activation: Literal["gelu", "relu"] = "gelu"
    norm_first: bool = True  # false: BERT's post-LN

    def __post_init__(self) -> None:
        if self.d_ff < 0:
            raise ValueError(f"model.d_ff must be 0 (4 × d_model) or more; got {self.d_ff}")
        check_model(self, self.n_heads, self.n_layers, rates=("dropout", "attention_dropout", "ff_dropout"))


def _mlm_train_defaults() -> TrainConfig:
    # Sized to finish in minutes on a laptop's CPU (as every task's defaults are); mlm-tiny trains twice as long
    return TrainConfig(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, warmup_steps=200,
                       max_steps=1500, batch_size=32, label_smoothing=0.0, eval_every=500)


@dataclass
class MLMConfig:
    data: MLMDataConfig = field(default_factory=MLMDataConfig)
    model: MLMModelConfig = field(default_factory=MLMModelConfig)
    train: TrainConfig = field(default_factory=_mlm_train_defaults)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def __post_init__(self) -> None:
        self.parallel.data_parallel_only(TASK)

    def check_layout(self, world: int) -> None:
        """A UserError unless the [parallel] layout fits ``world`` processes and the batch splits evenly."""
        check_layout(self.parallel, world, self.train.batch_size)


def build_model(config: MLMModelConfig, vocab_size: int, block_size: int) -> MaskedLM:
    c = config
    return MaskedLM(MaskedLMConfig(
        vocab_size, d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers, d_ff=c.d_ff or None,
        max_len=block_size + 2, dropout=c.dropout, attention_dropout=c.attention_dropout, ff_dropout=c.ff_dropout,
        norm_first=c.norm_first, activation=c.activation, positional=c.positional,
        max_relative_position=c.max_relative_position, pad_id=BERT_SPECIALS.index(PAD)))


def masking_for(tokenizer: Tokenizer, config: MLMDataConfig) -> Masking:
    return Masking.for_tokenizer(tokenizer, BERT_SPECIALS, config.mask_probability, config.whole_word_masking)


# --- data, loss and evaluation -----------------------------------------------------------------------

def prepare_data(config: MLMDataConfig, run: Path) -> dict[str, Any]:
    """Split the text, train WordPiece on the training part (its first ``tokenizer_sample_chars``
    characters), write train.bin / valid.bin."""
    pieces = token_stream.split_text(config.text, config.valid_fraction)
    sample = token_stream.first_characters(pieces["train"](), config.tokenizer_sample_chars)
    tokenizer = train_wordpiece(sample, config.vocab_size, config.lowercase)
    return write_splits(tokenizer, pieces, run, str(config.text))


def mlm_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the chosen positions only (labels other than IGNORE), and their count;
    a batch with none chosen contributes a loss of 0 with weight 0."""
    chosen = batch["labels"] != IGNORE  # (B, T)
    labels = batch["labels"][chosen]  # (N,)
    loss = F.cross_entropy(model(batch["x"], chosen=chosen), labels, reduction="sum")  # the head on N positions only
    return loss / max(labels.numel(), 1), labels.numel()


@torch.no_grad()
def evaluate_mlm(model, batches: Iterable[dict[str, torch.Tensor]], device: torch.device,
                 prefix: str = "val_") -> dict[str, float]:
    """Over the chosen positions of ``batches``: the loss in nats per masked token, its exponential
    (the masked-token perplexity) and how often the likeliest token is the original."""
    loss_sum, correct, n = 0.0, 0, 0
    for batch in batches:
        batch = move(batch, device)
        chosen = batch["labels"] != IGNORE  # (B, T)
        logits, labels = model(batch["x"], chosen=chosen).float(), batch["labels"][chosen]  # (N, V), (N,)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(-1) == labels).sum())
        n += labels.numel()
    if n == 0:  # a loss of 0 over no token would read as a perfect model
        raise DataError("none of the scored text's tokens can be masked (each is [UNK] or another special token), "
                        "so there is nothing to score: give text in words the tokenizer knows")
    loss = loss_sum / n
    return {f"{prefix}loss": loss, f"{prefix}perplexity": math.exp(min(loss, 700.0)),
            f"{prefix}accuracy": correct / max(n, 1), f"{prefix}masked_tokens": n}


# --- a trained run ---------------------------------------------------------------------------------

class MaskedLanguageModel:
    """A trained run: the encoder, its tokenizer and how it was masked."""

    def __init__(self, model: MaskedLM, tokenizer: Tokenizer, config: MLMConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.masking = masking_for(tokenizer, config.data)
        self.cls_id, self.sep_id, self.mask_id = (tokenizer.token_to_id(t) for t in (CLS, SEP, MASK))
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, run: str | Path, device: str = "cpu") -> "MaskedLanguageModel":
        info, model = runs.load_trained(run, TASK, "a masked-language-model run", device)
        return cls(model, load_tokenizer(Path(run) / "tokenizer.json", model.config.vocab_size),
                   build(MLMConfig, info["config"]))

    def batches(self, ids: np.ndarray, starts: np.ndarray) -> Iterable[dict[str, torch.Tensor]]:
        """Held-out blocks at ``starts``, masked the one fixed way (``evaluation_batches``)."""
        return evaluation_batches(ids, starts, self.config.data.block_size, self.config.train.batch_size,
                                  self.masking, self.cls_id, self.sep_id)

    def encode(self, text: str) -> torch.Tensor:
        """(1, T + 2): [CLS], the text's T tokens, [SEP]; a text longer than a block is a UserError."""
        ids = self.tokenizer.encode(text).ids
        if len(ids) + 2 > self.model.max_len:
            raise UserError(f"{text_start(text)} has {len(ids)} tokens; this model reads at most "
                            f"{self.model.max_len - 2}")
        return torch.tensor([[self.cls_id, *ids, self.sep_id]], device=self.device)

    @torch.no_grad()
    def attention(self, text: str) -> list[torch.Tensor]:
        """Per layer the (H, T, T) self-attention over [CLS] text [SEP] (every row reads both sides)."""
        _, maps = self.model(self.encode(text), need_weights=True)
        return [w[0].float().cpu() for w in maps]

    @torch.no_grad()
    def fill(self, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """For each [MASK] of ``text``, in order, the ``top_k`` likeliest ordinary tokens and their
        probabilities (the softmax over the ordinary tokens, special ones left out)."""
        row = self.encode(text)
        ids = row[0, 1:-1]
        if not (ids == self.mask_id).any():
            raise UserError(f"no {MASK} in {text!r}: write {MASK} where a word is to be filled in")
        logits = self.model(row)[0, 1:-1].float()  # (T, V)
        logits[:, torch.from_numpy(self.masking.special).to(self.device)] = -math.inf
        probabilities = logits[ids == self.mask_id].softmax(-1)  # (M, V)
        ordinary = int((~self.masking.special).sum())  # a larger top_k listed the special ones too
        best = probabilities.topk(min(top_k, ordinary), dim=-1)
        return [[(self.tokenizer.id_to_token(int(i)), float(p)) for p, i in zip(values, indices)]
                for values, indices in zip(best.values, best.indices)]

    def evaluate_text(self, path: str | Path) -> dict[str, Any]:
        """Another text scored as the validation text is: every whole block, masked the fixed way."""
        block_size = self.config.data.block_size
        with token_stream.tokenised_text(self.tokenizer, path) as (ids, _):
            check_text_length(path, len(ids), block_size)
            scores = evaluate_mlm(self.model, self.batches(ids, token_stream.evaluation_blocks(ids, block_size)),
                                  self.device, prefix="")
            tokens, unknown = len(ids), int(np.count_nonzero(ids == self.tokenizer.token_to_id(UNK)))
            del ids  # the memory map, before its file goes
        return {**scores, "loss_unit": "nats per masked token", "tokens": tokens, "unknown_tokens": unknown}


def train(config: MLMConfig, run: Path, resume: bool = False, log=print, *,
          parallel: SingleProcess | None = None) -> tuple[MaskedLanguageModel, dict[str, Any]]:
    """Prepare the data (or reopen it when resuming), train with the shared engine, then score the
    best checkpoint on all the validation text in fp32. Under torchrun the main rank prepares the data
    and writes the files; every rank trains on its share of each batch."""
    started = time.perf_counter()
    parallel = parallel or SingleProcess()
    d, t = config.data, config.train
    if not resume:
        parallel.on_main(lambda: (runs.write_run(run, TASK, to_dict(config)), prepare_data(d, run)))
    meta = runs.read_json(run / "data.json")
    speak = log if parallel.is_main else (lambda *args, **kwargs: None)
    tokenizer = load_tokenizer(run / "tokenizer.json")
    ids = open_splits(run, meta)
    torch.manual_seed(t.seed)  # the same initial weights on every rank, and in every run of this seed
    mlm = MaskedLanguageModel(build_model(config.model, meta["vocab_size"], d.block_size), tokenizer, config)
    batches = MaskedBlockBatches(ids["train"], d.block_size, t.batch_size, t.seed, mlm.masking, mlm.cls_id,
                                 mlm.sep_id)
    starts = token_stream.evaluation_blocks(ids["valid"], d.block_size, d.eval_tokens)
    n_params = sum(p.numel() for p in mlm.model.parameters())
    speak(f"model: {n_params:,} parameters; WordPiece vocabulary {meta['vocab_size']}; {meta['train_tokens']:,} "
          f"training and {meta['valid_tokens']:,} validation tokens from {meta['corpus']}")
    trainer = Trainer(mlm.model, t, run, loss_fn=mlm_loss, batches=batches,
                      evaluate=lambda m: evaluate_mlm(m, mlm.batches(ids["valid"], starts), trainer.device),
                      select="val_loss", d_model=config.model.d_model, parallel=parallel)
    progress = trainer.fit(resume=resume)
    if progress.stopped:
        speak(progress.stopped)

    mlm.model, mlm.device = trainer.model.eval(), trainer.device
    every_block = token_stream.evaluation_blocks(ids["valid"], d.block_size)
    metrics: dict[str, Any] = evaluate_mlm(mlm.model, mlm.batches(ids["valid"], every_block), trainer.device)
    metrics.update({"val_loss_unit": "nats per masked token", "steps": progress.step,
                    "best_step": progress.best_step, "train_seconds": round(progress.train_seconds, 2),
                    "total_seconds": round(time.perf_counter() - started, 2), "parameters": n_params,
                    "corpus": meta["corpus"], "vocab_size": meta["vocab_size"], "processes": parallel.world})
    if parallel.is_main:
        runs.write_metrics(run, metrics)
    return mlm, metrics


# --- the registry entry --------------------------------------------------------------------------

class MaskedLanguageModelTask(Task):
    name = TASK
    models = ("MaskedLM",)
    description = "masked language modelling (BERT): a text file -> an encoder-only Transformer that fills in [MASK]"
    example = "seqlab train mlm --text input.txt --config mlm-tiny --out runs/mlm"
    config_class = MLMConfig
    bigger_recipes = ("mlm-tiny",)  # the same model, twice the steps
    data_in_run = True  # train.bin / valid.bin
    eval_flags = (Flag("text", "mlm: a UTF-8 text file, a folder of them or a glob pattern, masked as the "
                               "validation text is", required=True),)
    predict_flags = (Flag("top_k", "mlm: fillers shown for each [MASK] (default 5)", type=int),)
    validation_metric = "val_accuracy"

    def read_data(self, config: MLMConfig) -> int:
        """Checked here, before a run directory exists: a text given, readable, and with characters
        enough for a block in each part (every WordPiece token spans at least one character)."""
        d = config.data
        if not d.text:
            raise UserError("train mlm needs a text to pre-train on: --text FILE")
        characters = token_stream.count_characters(d.text)  # a missing, empty or non-UTF-8 text fails here
        token_stream.check_split_lengths(d.text, d.valid_fraction, d.block_size, characters)
        return characters

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        return train(config, run, resume=resume, log=log, parallel=parallel)[1]

    def summary(self, config, m) -> str:
        return (f"validation: masked-token accuracy {m['val_accuracy']:.2%}, perplexity {m['val_perplexity']:.2f} "
                f"({m['val_masked_tokens']} masked tokens)")

    def load(self, run, device="cpu") -> MaskedLanguageModel:
        return MaskedLanguageModel.load(run, device)

    def evaluate(self, mlm: MaskedLanguageModel, options) -> dict[str, Any]:
        return mlm.evaluate_text(options["text"])

    def input_limit(self, mlm: MaskedLanguageModel) -> int:
        return mlm.model.max_len - 2

    def explore_example(self, mlm: MaskedLanguageModel, run) -> dict[str, Any]:
        """The opening words of the run's validation text (valid.bin), one whole word in their second
        half masked (a word of one token, so that one [MASK] stands for all of it)."""
        ids = validation_opening(run, mlm.tokenizer.get_vocab_size(), min(16, self.input_limit(mlm)) + 1) or []
        pieces = [mlm.tokenizer.id_to_token(i) or "" for i in ids]
        starts = [i for i, piece in enumerate(pieces) if not piece.startswith("##")]  # where words begin
        if len(starts) >= 2:  # whole words only: from the first start to the last (which may go on)
            ids, pieces = ids[starts[0] : starts[-1]], pieces[starts[0] : starts[-1]]
        whole = [i for i in range(len(ids) // 2, len(ids)) if not pieces[i].startswith(("##", "["))
                 and (i + 1 == len(ids) or not pieces[i + 1].startswith("##"))]
        if len(starts) >= 2 and whole:
            ids[whole[0]] = mlm.mask_id
            return {"text": mlm.tokenizer.decode(ids, skip_special_tokens=False),
                    "source": "the opening of the validation text, one word masked"}
        return {"text": f"the {MASK} of the text", "source": "a generic example (this run keeps no validation text)"}

    def explore(self, mlm: MaskedLanguageModel, request) -> dict[str, Any]:
        if not request.text.strip():
            raise UserError("type an input first")
        return views.fill_in(mlm, request.text)

    def predict(self, mlm: MaskedLanguageModel, inputs, options):
        top_k = options.get("top_k") or 5
        for text in inputs:
            fills = mlm.fill(text, top_k)  # every input checked before its first line is printed
            yield text
            for n, fillers in enumerate(fills, 1):
                yield f"  {MASK} {n}: " + ", ".join(f"{token} {p:.3f}" for token, p in fillers)


register(MaskedLanguageModelTask())
