"""Language modelling: a text (one file, a folder of files or a glob pattern) -> a trained
decoder-only Transformer (or RNN/LSTM/GRU) LM, validation loss in nats per token, perplexity and bits
per character; then sampling.

    seqlab train lm --text corpus.txt [--config RECIPE] [--set key=value ...] [--out RUN_DIR]
    seqlab train lm --text corpus/           # every file under the folder, joined in sorted path order
    seqlab train lm --text 'corpus/*.txt'    # the files the pattern matches, in sorted path order
    seqlab generate RUN_DIR --prompt "ROMEO:" --max-new-tokens 500 [--temperature --top-k --top-p --seed]
    seqlab eval RUN_DIR --text other.txt      # loss, perplexity and bits per character on another text

With no text given, the corpus is the Python standard library's own source (see
:func:`seqlab.data.token_stream.python_stdlib_corpus`).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from ..config import build, check_model, option, to_dict
from ..data import token_stream
from ..data.tokenizer import UNK, check_vocab_size, load_tokenizer, save_tokenizer, train_tokenizer
from ..errors import DamagedFileError, DataError, UserError
from ..io import write_json
from ..models import RecurrentLM, RecurrentLMConfig, TransformerLM, TransformerLMConfig
from ..models.generation import CompileError, check_compile, check_sampling
from ..parallel.config import ParallelConfig
from ..parallel.runtime import SingleProcess, check_layout, next_token_loss
from ..train.config import TrainConfig
from ..train.loop import Trainer, move
from . import run_dir as runs, views
from .task import Flag, Task, register

TASK = "lm"


@dataclass
class LMDataConfig:
    text: str = option("", "a UTF-8 text file, a folder of them or a glob pattern (default: the Python "
                            "standard library's source)", path=True)
    tokenizer: Literal["char", "bpe"] = "char"  # bpe: GPT-2's byte-level BPE, trained on the split
    vocab_size: int = 4096  # BPE only; char takes every character of the training text
    valid_fraction: float = 0.1  # the last 10 % of the text validates
    block_size: int = 128  # context length in tokens
    eval_tokens: int = 0  # validation tokens scored at each evaluation; 0 = all of them
    default_corpus_chars: int = 2_000_000  # how much of the standard library, when no text is given
    tokenizer_sample_chars: int = 100_000_000  # the tokenizer learns from this many leading training characters

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 0.5:
            raise ValueError(f"data.valid_fraction must be in (0, 0.5); got {self.valid_fraction}")
        if self.block_size < 2 or self.vocab_size < 260 and self.tokenizer == "bpe":
            raise ValueError("data.block_size must be at least 2 and a BPE data.vocab_size at least 260")
        check_vocab_size(self.vocab_size)
        if self.eval_tokens < 0 or self.default_corpus_chars < 1 or self.tokenizer_sample_chars < 1:
            raise ValueError("data.eval_tokens must not be negative, data.default_corpus_chars and "
                             "data.tokenizer_sample_chars positive")
        token_stream.check_eval_tokens(self.eval_tokens, self.block_size)


@dataclass
class LMModelConfig:
    arch: Literal["rnn", "lstm", "gru", "transformer"] = "transformer"
    # Small enough to train in minutes on a laptop's CPU; --config shakespeare-char-60min is the "baby GPT"
    d_model: int = 128
    n_heads: int = 4  # transformer only
    n_layers: int = 4
    d_ff: int = 0  # 0 = 4 · d_model
    dropout: float = 0.0  # on the residual stream (and embeddings)
    attention_dropout: float | None = None  # None = dropout
    ff_dropout: float | None = None  # None = dropout
    positional: Literal["learned", "sinusoidal", "rotary", "relative"] = "learned"  # relative: Shaw et al. (2018)
    max_relative_position: int = 16  # positional="relative": offsets clipped to [-k, k], k = this
    activation: Literal["gelu", "relu", "gelu_tanh"] = "gelu"
    norm_first: bool = True
    tie_weights: bool = True

    def __post_init__(self) -> None:
        if self.d_ff < 0:
            raise ValueError(f"model.d_ff must be 0 (4 × d_model) or more; got {self.d_ff}")
        check_model(self, self.n_heads if self.arch == "transformer" else 1, self.n_layers,
                    rates=("dropout", "attention_dropout", "ff_dropout"))


def _lm_train_defaults() -> TrainConfig:
    return TrainConfig(lr=2e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, warmup_steps=50,
                       max_steps=1000, batch_size=32, label_smoothing=0.0, eval_every=250)


@dataclass
class LMConfig:
    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: LMModelConfig = field(default_factory=LMModelConfig)
    train: TrainConfig = field(default_factory=_lm_train_defaults)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def __post_init__(self) -> None:
        m, par = self.model, self.parallel
        if (par.tp > 1 or par.pp > 1) and m.arch != "transformer":
            raise ValueError(f"parallel.tp and parallel.pp split a Transformer; model.arch is {m.arch!r}")
        if m.n_heads % par.tp:
            raise ValueError(f"parallel.tp={par.tp} must divide model.n_heads={m.n_heads} (each rank whole heads)")
        if par.tp > 1 and m.positional == "relative":  # its tables are shared by all heads, split across ranks
            raise ValueError("parallel.tp does not split the relative-position tables (shared by every head): "
                             "use model.positional=learned, sinusoidal or rotary with tensor parallel")
        if m.n_layers % par.pp:
            raise ValueError(f"parallel.pp={par.pp} must divide model.n_layers={m.n_layers} (equal stages)")
        if par.pp > 1 and m.tie_weights:
            raise ValueError("parallel.pp puts the embedding and the output layer on different stages: "
                             "set model.tie_weights=false")

    def check_layout(self, world: int) -> None:
        """A UserError unless the [parallel] layout fits ``world`` processes and the batch splits evenly."""
        check_layout(self.parallel, world, self.train.batch_size)


def build_lm(config: LMModelConfig, vocab_size: int, block_size: int):
    c = config
    if c.arch == "transformer":
        return TransformerLM(TransformerLMConfig(
            vocab_size, d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers, d_ff=c.d_ff or None,
            max_len=block_size, dropout=c.dropout, norm_first=c.norm_first, activation=c.activation,
            positional=c.positional, tie_weights=c.tie_weights, attention_dropout=c.attention_dropout,
            ff_dropout=c.ff_dropout, max_relative_position=c.max_relative_position,
            embedding_scale=c.positional == "sinusoidal"))  # the table's scale over GPT's small embeddings
    return RecurrentLM(RecurrentLMConfig(vocab_size, d_model=c.d_model, n_layers=c.n_layers, cell=c.arch,
                                         dropout=c.dropout, tie_weights=c.tie_weights))


# --- data --------------------------------------------------------------------------------------

def prepare_data(config: LMDataConfig, run: Path) -> dict[str, Any]:
    """Split the text, train the tokenizer on the training part (its first ``tokenizer_sample_chars``
    characters), write train.bin / valid.bin."""
    if config.text:
        source = Path(config.text)
        described = str(source)
    else:
        source = run / "corpus.txt"  # the default corpus, written once so both passes read the same
        with open(source, "w", encoding="utf-8") as file:
            for text in token_stream.python_stdlib_corpus(config.default_corpus_chars):
                file.write(text)
        described = f"the Python standard library's source ({config.default_corpus_chars:,} characters)"
    pieces = token_stream.split_text(source, config.valid_fraction)
    kind = "bytebpe" if config.tokenizer == "bpe" else "char"
    sample = token_stream.first_characters(pieces["train"](), config.tokenizer_sample_chars)
    tokenizer = train_tokenizer(sample, kind, config.vocab_size if kind == "bytebpe" else 1 << 20)
    return write_splits(tokenizer, pieces, run, described)


def write_splits(tokenizer: Tokenizer, pieces: dict[str, Callable[[], Iterator[str]]], run: Path,
                 described: str) -> dict[str, Any]:
    """The run's tokenizer.json, its train.bin / valid.bin (``split_text``'s pieces tokenised) and
    data.json (the corpus, vocabulary size, and each split's tokens and characters) -> data.json's contents."""
    save_tokenizer(tokenizer, run / "tokenizer.json")
    meta: dict[str, Any] = {"corpus": described, "vocab_size": tokenizer.get_vocab_size()}
    for split in ("train", "valid"):
        tokens, chars = token_stream.encode_to_file(tokenizer, pieces[split](), run / f"{split}.bin")
        meta[f"{split}_tokens"], meta[f"{split}_characters"] = tokens, chars
    write_json(run / "data.json", meta, indent=2)
    return meta


def open_splits(run: Path, meta: dict[str, Any]) -> dict[str, np.memmap]:
    """The run's train.bin and valid.bin memory-mapped, each checked against its data.json (``meta``):
    as many ids as it records, none past the vocabulary. A file changed since (cut short, overwritten)
    is a DamagedFileError naming it, not an error deep inside a step."""
    vocab_size, splits = meta["vocab_size"], {}
    for split in ("train", "valid"):
        path = run / f"{split}.bin"
        if not path.is_file():
            raise UserError(f"{path} is missing; the run directory is incomplete: train the run again")
        itemsize, recorded = token_stream.token_dtype(vocab_size).itemsize, meta.get(f"{split}_tokens")
        size = path.stat().st_size
        if size % itemsize or (recorded is not None and size != recorded * itemsize):
            raise DamagedFileError(path, f"{size:,} bytes, not the {recorded:,} ids of {itemsize} bytes that "
                                         f"data.json records" if recorded is not None else
                                         f"{size:,} bytes, not a whole number of {itemsize}-byte ids")
        ids = token_stream.open_tokens(path, vocab_size)
        if token_stream.largest_id(ids) >= vocab_size:
            raise DamagedFileError(path, f"it holds ids past the vocabulary of {vocab_size:,}")
        splits[split] = ids
    return splits


# --- loss and evaluation -------------------------------------------------------------------------

def lm_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over every position of every block, and the token count."""
    return next_token_loss(model(batch["x"]), batch["y"]), batch["y"].numel()


@torch.no_grad()
def evaluate_lm(model, ids: np.ndarray, starts: np.ndarray, block_size: int, batch_size: int,
                device: torch.device, chars_per_token: float, prefix: str = "val_") -> dict[str, float]:
    """Loss in nats per token over non-overlapping blocks (of the validation text), perplexity, bits
    per character."""
    loss_sum, tokens = 0.0, 0
    for i in range(0, len(starts), batch_size):
        batch = move(token_stream.blocks_at(ids, starts[i : i + batch_size], block_size), device)
        logits = model(batch["x"]).float()
        loss_sum += F.cross_entropy(logits.flatten(0, 1), batch["y"].flatten(), reduction="sum").item()
        tokens += batch["y"].numel()
    loss = loss_sum / tokens
    return {f"{prefix}loss": loss, f"{prefix}perplexity": math.exp(min(loss, 700.0)),
            f"{prefix}bits_per_char": loss / chars_per_token / math.log(2)}


def check_text_length(path: str | Path, tokens: int, block_size: int) -> None:
    """A DataError unless a text of ``tokens`` tokens fills one block of ``block_size`` (and its target)."""
    if tokens < block_size + 1:
        raise DataError(f"{path} has {tokens} tokens; the model reads blocks of {block_size} and "
                        f"needs at least {block_size + 1}")


# --- a trained run ---------------------------------------------------------------------------------

class LanguageModel:
    """A trained run, ready to sample: the model and its tokenizer."""

    def __init__(self, model, tokenizer: Tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.config: LMConfig | None = None
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, run: str | Path, device: str = "cpu") -> "LanguageModel":
        info, model = runs.load_trained(run, TASK, "a language-model run", device)
        lm = cls(model, load_tokenizer(Path(run) / "tokenizer.json", model.config.vocab_size))
        lm.config = build(LMConfig, info["config"])  # the block size and batch that eval reads with
        if hasattr(model.config, "max_len"):  # a Transformer's context: eval's blocks must fit in it
            runs.check_fits(run, info, "data.block_size", model.config.max_len, at_most=True)
        return lm

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        ids = self.tokenizer.encode(prompt).ids if prompt else []
        if not ids:  # an empty prompt starts after a line break, as a new paragraph
            newline = self.tokenizer.encode("\n").ids
            if not newline or self.tokenizer.token_to_id(UNK) in newline:
                raise UserError("the model knows no line break to start from; give a --prompt")
            ids = newline
        return torch.tensor([ids], device=self.device)

    def stream(self, prompt: str, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None, compile: bool = False) -> Iterator[str]:
        """The continuation's text piece by piece as it is sampled. Bad settings fail here, before
        the first piece is asked for. ``compile``: each token's step through torch.compile (see
        ``generation.stream``)."""
        try:
            check_sampling(max_new_tokens, temperature, top_k, top_p)
            if compile:
                check_compile(self.model)
        except ValueError as error:
            raise UserError(str(error)) from None
        if seed is not None and not 0 <= seed < 2**63:
            raise UserError(f"--seed must be in [0, 2^63); got {seed}")
        ids = self.encode_prompt(prompt)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed if seed is not None else torch.seed())
        return self._pieces(self.model.stream(ids, max_new_tokens, temperature, top_k, top_p, generator=generator,
                                              compile=compile))

    def generate(self, prompt: str, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None, compile: bool = False) -> str:
        """The continuation of ``prompt`` (without the prompt): ``stream``'s pieces joined."""
        return "".join(self.stream(prompt, max_new_tokens, temperature, top_k, top_p, seed, compile))

    def attention(self, text: str) -> list[torch.Tensor]:
        """Per layer the (H, T, T) causal self-attention over ``text``'s T tokens (row t: what token t
        read among tokens 0..t)."""
        if not isinstance(self.model, TransformerLM):
            raise UserError(f"a {type(self.model).__name__} has no attention weights")
        ids = self.encode_prompt(text)
        if self.model.max_len and ids.size(1) > self.model.max_len:
            raise UserError(f"the text has {ids.size(1)} tokens; this model reads at most {self.model.max_len}")
        with torch.no_grad():
            _, maps = self.model(ids, need_weights=True)
        return [w[0].float().cpu() for w in maps]

    def evaluate_text(self, path: str | Path, block_size: int, batch_size: int = 32) -> dict[str, Any]:
        """Another text scored as the validation text is: loss in nats per token over its whole
        non-overlapping blocks, perplexity, bits per character. The text is tokenised to a temporary
        memory-mapped file, so it may be larger than memory."""
        with token_stream.tokenised_text(self.tokenizer, path) as (ids, characters):
            tokens = len(ids)
            check_text_length(path, tokens, block_size)
            starts = token_stream.evaluation_blocks(ids, block_size)
            scores = evaluate_lm(self.model, ids, starts, block_size, batch_size, self.device,
                                 characters / tokens, prefix="")
            unk = self.tokenizer.token_to_id(UNK)  # None for a tokenizer without one (an imported GPT-2's)
            unknown = int(np.count_nonzero(ids == unk)) if unk is not None else 0
            del ids  # the memory map, before its file goes
        return {**scores, "loss_unit": "nats per token", "tokens": tokens, "scored_tokens": len(starts) * block_size,
                "unknown_tokens": unknown}

    def attention_png(self, ids: list[int], path: Path) -> bool:
        """The last layer's causal self-attention over a stretch of tokens, a panel per head (each row
        reads only the tokens before it). False for a recurrent model, which has none."""
        if not isinstance(self.model, TransformerLM):
            return False
        from ..viz.attention import plot_self_attention  # matplotlib: only when drawing

        with torch.no_grad():
            _, maps = self.model(torch.tensor([ids], device=self.device), need_weights=True)
        weights = maps[-1][0].float().cpu()  # (H, T, T)
        tokens = [self.tokenizer.decode([i]) for i in ids]
        plot_self_attention(weights, tokens, path, "causal self-attention, last layer")
        return True

    def _pieces(self, tokens: Iterator[torch.Tensor]) -> Iterator[str]:
        ids: list[int] = []
        shown = ""
        for token in _compile_errors_told(tokens):
            ids.append(int(token))
            # Decode the whole continuation: a byte-level BPE character may span several tokens.
            text = self.tokenizer.decode(ids)
            if text.endswith("\ufffd"):  # an unfinished UTF-8 sequence: wait for its next byte
                continue
            yield text[len(shown):]
            shown = text


def _compile_errors_told(tokens: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    """``tokens``, with a decoding step that torch.compile could not build told as a user's error."""
    try:
        yield from tokens
    except CompileError as error:
        raise UserError(str(error)) from None


def train(config: LMConfig, run: Path, resume: bool = False, log=print, *,
          parallel: SingleProcess | None = None) -> tuple[LanguageModel, dict[str, Any]]:
    """Prepare the data (or reopen it when resuming), train with the shared engine, then score the
    best checkpoint on the validation text in fp32. Under torchrun, ``parallel`` is this rank's part:
    the main rank prepares the data and writes the files, every rank trains."""
    started = time.perf_counter()
    parallel = parallel or SingleProcess()
    if not resume:
        def prepare() -> None:
            runs.write_run(run, TASK, to_dict(config))
            prepare_data(config.data, run)

        parallel.on_main(prepare)
    meta = runs.read_json(run / "data.json")
    if not parallel.is_main:
        log = lambda *args, **kwargs: None  # noqa: E731 — one rank speaks
    tokenizer = load_tokenizer(run / "tokenizer.json")
    ids = open_splits(run, meta)
    d, t = config.data, config.train
    starts = token_stream.evaluation_blocks(ids["valid"], d.block_size, d.eval_tokens)
    all_starts = token_stream.evaluation_blocks(ids["valid"], d.block_size)
    chars_per_token = meta["valid_characters"] / max(meta["valid_tokens"], 1)
    batches = token_stream.BlockBatches(ids["train"], d.block_size, t.batch_size, t.seed)

    torch.manual_seed(t.seed)  # the same initial weights on every rank, and in every run of this seed
    model = build_lm(config.model, meta["vocab_size"], d.block_size)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters; vocab {meta['vocab_size']}; {meta['train_tokens']:,} training and "
        f"{meta['valid_tokens']:,} validation tokens from {meta['corpus']}")
    trainer = Trainer(model, t, run, loss_fn=lm_loss, batches=batches,
                      evaluate=lambda m: evaluate_lm(m, ids["valid"], starts, d.block_size, t.batch_size,
                                                     trainer.device, chars_per_token),
                      select="val_loss", d_model=config.model.d_model, parallel=parallel)
    progress = trainer.fit(resume=resume)
    if progress.stopped:
        log(progress.stopped)

    lm = LanguageModel(trainer.model.eval(), tokenizer)
    metrics: dict[str, Any] = evaluate_lm(lm.model, ids["valid"], all_starts, d.block_size, t.batch_size,
                                          trainer.device, chars_per_token)  # fp32, all the validation text
    tokens_seen = progress.step * t.batch_size * t.grad_accum * d.block_size
    metrics.update({"val_loss_unit": "nats per token", "steps": progress.step, "best_step": progress.best_step,
                    "train_seconds": round(progress.train_seconds, 2),
                    "tokens_per_s": round(tokens_seen / max(progress.train_seconds, 1e-9), 1),
                    "total_seconds": round(time.perf_counter() - started, 2), "parameters": n_params,
                    "corpus": meta["corpus"], "tokenizer": d.tokenizer, "vocab_size": meta["vocab_size"]})
    metrics["processes"] = parallel.world
    if parallel.is_main:
        runs.write_metrics(run, metrics)
    if parallel.world == 1:  # the opening tokens of the validation text, as the model reads them
        lm.attention_png([int(i) for i in ids["valid"][: min(24, d.block_size)]], run / "attention.png")
    return lm, metrics


def load_run_config(run: Path) -> LMConfig:
    return build(LMConfig, runs.read_run(run)["config"])


def validation_opening(run: Path, vocab_size: int, n: int) -> list[int] | None:
    """The first ``n`` ids of the run's validation split (``valid.bin``, which every lm and mlm run keeps:
    the explorer opens on them); None when the file is missing or damaged."""
    path = Path(run) / "valid.bin"
    if not path.is_file() or path.stat().st_size % token_stream.token_dtype(vocab_size).itemsize:
        return None
    return [int(i) for i in token_stream.open_tokens(path, vocab_size)[:n]]


# --- the registry entry --------------------------------------------------------------------------

class LanguageModelTask(Task):
    name = "lm"
    models = ("TransformerLM", "RecurrentLM")
    description = ("language modelling: a text file, folder or glob -> a decoder-only Transformer (or "
                   "RNN/LSTM/GRU); then sampling")
    example = "seqlab train lm --text input.txt --config shakespeare-char-77s --out runs/shakespeare"
    config_class = LMConfig
    compare_recipe = "compare-lm"
    data_in_run = True  # train.bin / valid.bin
    bigger_recipes = ("shakespeare-char-60min",)
    predict_needs_input = False
    eval_flags = (Flag("text", "lm: a UTF-8 text file, a folder of them or a glob pattern", required=True),)

    def read_data(self, config: LMConfig) -> int | None:
        """Only checked here (a missing or empty text, a folder without files, a pattern matching none
        fail before anything is made); ``train`` tokenises."""
        d = config.data
        if not d.text:
            return None
        characters = token_stream.count_characters(d.text)
        if d.tokenizer == "char":  # one token a character: a text too short for a block fails here
            token_stream.check_split_lengths(d.text, d.valid_fraction, d.block_size, characters)
        return characters

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        return train(config, run, resume=resume, log=log, parallel=parallel)[1]

    def summary(self, config, m) -> str:
        return (f"validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_perplexity']:.2f}, "
                f"{m['val_bits_per_char']:.4f} bits/char")

    def load(self, run, device="cpu") -> LanguageModel:
        return LanguageModel.load(run, device)

    def evaluate(self, lm: LanguageModel, options) -> dict[str, Any]:
        scores = lm.evaluate_text(options["text"], lm.config.data.block_size, lm.config.train.batch_size)
        if unknown := scores["unknown_tokens"]:  # all one <unk>, easy to predict: the figures flatter the model
            sys.stderr.write(f"note: {unknown} of the {scores['tokens']} tokens of {options['text']} are characters "
                             f"the run's vocabulary lacks, each read as {UNK}; the loss and perplexity count "
                             f"them as that one token, so they are lower than the text deserves\n")
        return scores

    def predict(self, lm: LanguageModel, inputs, options):
        raise UserError("a language model is sampled with seqlab generate RUN --prompt TEXT")

    def input_limit(self, lm: LanguageModel) -> int:
        return lm.model.max_len or 1024

    def explore_example(self, lm: LanguageModel, run) -> dict[str, Any]:
        """The opening tokens of the run's validation text (valid.bin), leaving room to continue them."""
        limit = self.input_limit(lm)
        n, new = min(16, limit // 2), min(40, limit - min(16, limit // 2))
        vocab_size = lm.tokenizer.get_vocab_size()
        if (ids := validation_opening(run, vocab_size, n)) is not None:
            text = lm.tokenizer.decode([i for i in ids if i < vocab_size])
            if text.strip():
                return {"text": text, "max_new_tokens": new, "source": "the opening of the validation text"}
        return {"text": "The", "max_new_tokens": new, "source": "a generic example (this run keeps no validation text)"}

    def explore(self, lm: LanguageModel, request) -> dict[str, Any]:
        if not request.text.strip():
            raise UserError("type an input first")
        return views.generation(lm, request.text, request.max_new_tokens)

    def next_tokens(self, lm: LanguageModel, text, temperature, top_k, append=None, ids=None) -> dict[str, Any]:
        return views.next_tokens(lm, text, temperature, top_k, append, ids)

    def compare_columns(self, config) -> list[str]:
        return ["model", "parameters", "train_seconds", "tokens_per_s", "val_loss", "val_perplexity",
                "val_bits_per_char"]


register(LanguageModelTask())
