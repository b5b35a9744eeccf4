"""Translation: any parallel text -> a trained encoder-decoder (Transformer, RNN or convolutional),
BLEU on held-out data.

    seqlab train translate --src train.de --tgt train.en [--config FILE] [--set key=value ...]
    seqlab translate RUN_DIR "Ein Mann fährt Rad." [--beam 4]
    seqlab eval RUN_DIR --src test.de --ref test.en
    seqlab train translate --src train.de --tgt train.en --init MLM_RUN   # the encoder from a masked LM's (translate_init)
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sacrebleu
import torch
import torch.nn.functional as F
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from tokenizers import Tokenizer

from ..config import option, to_dict
from ..data import text
from ..data.batching import BucketedBatches, fixed_batches, pad
from ..data.tokenizer import (BOS_ID, EOS_ID, PAD_ID, check_vocab_size, decode, encode_all, load_tokenizer,
                              save_tokenizer, train_tokenizer, unknown_note, unknown_pieces)
from ..errors import DataError, UserError
from ..models.search import beam_search, greedy_decode
from ..parallel.config import ParallelConfig
from ..parallel.runtime import SingleProcess, check_layout
from ..train.config import TrainConfig
from ..train.loop import Trainer, autocast, move
from . import run_dir as runs, translate_init, views
from .init_run import too_long_hint
from .task import Flag, Task, register
from .translation_models import ModelConfig, build_model, teacher_forcing_at

Pairs = tuple[list[str], list[str]]
WORDS = Tokenizer13a()  # the words BLEU counts: "A man, in a hat." -> A man , in a hat .


@dataclass
class DataConfig:
    # aligned files, one sentence a line (.gz read as is), or one source<TAB>target file
    src: str = option("", "source sentences, one a line", path=True)
    tgt: str = option("", "target sentences, aligned with --src", path=True)
    tsv: str = option("", "one file of source<TAB>target lines instead of --src/--tgt", path=True)
    valid_src: str = option("", "validation sources (default: split off the training data)", path=True)
    valid_tgt: str = option("", "validation targets, aligned with --valid-src", path=True)
    valid_tsv: str = ""
    test_src: str = option("", "test sources (default: none; the validation split is scored)", path=True)
    test_tgt: str = option("", "test targets, aligned with --test-src", path=True)
    test_tsv: str = ""
    valid_fraction: float = 0.05  # held out of the training pairs when no validation data is given
    tokenizer: Literal["char", "word", "bpe"] = "bpe"
    vocab_size: int = 4000  # per side
    max_len: int = 256  # tokens; longer sentences are an error, not silently cut

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 0.5:
            raise ValueError(f"data.valid_fraction must be in (0, 0.5); got {self.valid_fraction}")
        if self.vocab_size < 8 or self.max_len < 2:
            raise ValueError("data.vocab_size must be at least 8 and data.max_len at least 2")
        check_vocab_size(self.vocab_size)
        for split, tsv in (("", self.tsv), ("valid_", self.valid_tsv), ("test_", self.test_tsv)):
            src, tgt = getattr(self, f"{split}src"), getattr(self, f"{split}tgt")
            if tsv and (src or tgt):
                flag = f"--{split.replace('_', '-')}{'src' if src else 'tgt'}"
                raise ValueError(f"data.{split}tsv holds the pairs, so {flag} does not go with it; give one or the "
                                 f"other")


MAX_BEAM = 256  # wider beams only cost memory (batch × beam rows of the decoder's cache)


@dataclass
class DecodeConfig:
    beam_size: int = 4  # 1 = greedy
    alpha: float = 0.6  # length penalty exponent
    max_output_len: int = 128

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.max_output_len < 1:
            raise ValueError("decode.beam_size and decode.max_output_len must be at least 1")
        if self.beam_size > MAX_BEAM:
            raise ValueError(f"decode.beam_size must be at most {MAX_BEAM}; got {self.beam_size}")


def _translate_train_defaults() -> TrainConfig:
    """Minutes on a laptop's CPU with the default model (see the README); a recipe sets its own."""
    return TrainConfig(warmup_steps=200, max_steps=1000, eval_every=250)


@dataclass
class TranslateConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=_translate_train_defaults)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def __post_init__(self) -> None:
        self.parallel.data_parallel_only("translate")

    def check_layout(self, world: int) -> None:
        """A UserError unless the [parallel] layout fits ``world`` processes and the batch splits evenly."""
        check_layout(self.parallel, world, self.train.batch_size)


# --- data --------------------------------------------------------------------------------------

def read_split(src: str, tgt: str, tsv: str, name: str) -> Pairs | None:
    if tsv:
        return text.read_tsv_pairs(tsv)
    if src or tgt:
        if not (src and tgt):
            raise UserError(f"{name} data needs both a source and a target file")
        return text.read_parallel(src, tgt)
    return None


def load_splits(data: DataConfig, seed: int) -> dict[str, Pairs]:
    """train/valid/test pairs from the configured files; valid is cut from train if not given."""
    train = read_split(data.src, data.tgt, data.tsv, "training")
    if train is None:
        raise UserError("no training data: give --src and --tgt, or --tsv (or data.src/data.tgt in a config)")
    splits = {"train": train}
    valid = read_split(data.valid_src, data.valid_tgt, data.valid_tsv, "validation")
    if valid is None:
        n_valid = max(1, int(len(train[0]) * data.valid_fraction))
        if len(train[0]) - n_valid < 1:
            raise DataError("too few sentence pairs to hold some out for validation")
        order = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(seed)).tolist()
        pick = lambda rows: ([train[0][i] for i in rows], [train[1][i] for i in rows])  # noqa: E731
        valid, splits["train"] = pick(order[:n_valid]), pick(order[n_valid:])
    splits["valid"] = valid
    test = read_split(data.test_src, data.test_tgt, data.test_tsv, "test")
    if test is not None:
        splits["test"] = test
    return splits


TRAINING_HINT = "raise it with --set data.max_len=N"
TRAINED_HINT = "the trained model's limit: shorten or split the sentence"


def encode_checked(tokenizer: Tokenizer, lines: list[str], max_len: int, what: str,
                   hint: str = TRAINING_HINT, numbered: bool = True) -> list[list[int]]:
    """Each line's ids; a line over ``max_len`` tokens (with its <bos> or <eos>) is a DataError that names
    it by its start, and by its number where ``numbered`` (lines in the order given, not a shuffled split)."""
    ids = encode_all(tokenizer, lines)
    for number, seq in enumerate(ids, 1):
        if len(seq) + 1 > max_len:  # +1: <bos> or <eos>
            named = f"{what} sentence {number}" if numbered else f"a {what} sentence"
            raise DataError(f"{named} ({text.text_start(lines[number - 1])}) has {len(seq)} tokens, {len(seq) + 1} "
                            f"with its <bos>/<eos>; data.max_len is {max_len} ({hint})")
    return ids


# --- model, loss, evaluation ---------------------------------------------------------------------

def token_loss(model, batch: dict[str, torch.Tensor], label_smoothing: float = 0.0, **forward_options):
    """Mean cross-entropy over real target tokens, and their count."""
    logits = model(batch["src"], batch["tgt_in"], **forward_options)  # (B, T, V)
    target = batch["tgt_out"]
    loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD_ID,
                           label_smoothing=label_smoothing)
    return loss, int((target != PAD_ID).sum())


def loss_sums(model, batches: list[dict[str, torch.Tensor]], device) -> tuple[float, int, int]:
    """Summed cross-entropy (no label smoothing), correct argmaxes and the count of real target tokens."""
    loss_sum, correct, tokens = 0.0, 0, 0
    for batch in batches:
        batch = move(batch, device)
        logits = model(batch["src"], batch["tgt_in"]).float()
        target = batch["tgt_out"]
        real = target != PAD_ID
        loss_sum += F.cross_entropy(logits[real], target[real], reduction="sum").item()
        correct += int((logits.argmax(-1)[real] == target[real]).sum())
        tokens += int(real.sum())
    return loss_sum, correct, tokens


def validation_metrics(model, batches: list[dict[str, torch.Tensor]], device) -> dict[str, float]:
    """Loss without label smoothing (so perplexity means what it says) and token accuracy."""
    loss_sum, correct, tokens = loss_sums(model, batches, device)
    val_loss = loss_sum / tokens
    return {"val_loss": val_loss, "val_perplexity": math.exp(val_loss), "val_token_accuracy": correct / tokens}


def perplexities(model, batches: list[dict[str, torch.Tensor]], references: list[str], device) -> dict[str, float]:
    """Perplexity per target token, and per word: the same summed loss spread over the references'
    words (sacreBLEU's 13a tokenisation, which splits off punctuation) plus one end of sentence each —
    what a word-level model predicts — so it compares across tokenisers, whatever the subword vocabulary."""
    loss_sum, _, tokens = loss_sums(model, batches, device)
    words = sum(len(WORDS(line).split()) + 1 for line in references)
    return {"perplexity": math.exp(loss_sum / tokens), "word_perplexity": math.exp(loss_sum / words)}


def translate_ids(model, sources: list[list[int]], decode_config: DecodeConfig, device,
                  precision: str = "fp32", batch_size: int = 128) -> list[list[int]]:
    """Decode many sentences in length-sorted batches; results in input order. No longer than the
    model's position table (its ``max_len``, where it has one): training never showed it longer targets.
    An empty source translates to nothing: a row of padding alone leaves the attention of the RNN and
    convolutional models nothing to weigh (a softmax over no position)."""
    model.eval()
    steps = min(decode_config.max_output_len, getattr(model, "max_len", decode_config.max_output_len))
    results: list[list[int]] = [[] for _ in sources]
    given = [i for i, source in enumerate(sources) if source]
    for batch in fixed_batches([sources[i] for i in given], [[] for _ in given], batch_size):
        src = batch["src"].to(device)
        with torch.no_grad(), autocast(device, precision):
            if decode_config.beam_size == 1:
                out = greedy_decode(model, src, steps)
            else:
                out = beam_search(model, src, steps, decode_config.beam_size,
                                  decode_config.alpha)
        for row, ids in zip(batch["rows"].tolist(), out.tolist()):
            results[given[row]] = ids
    return results


def score(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU by sacreBLEU (13a tokenisation; cased, and lowercased as most Multi30k work reports)
    and the share of exact matches."""
    return {"bleu": sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a").score,
            "bleu_lowercase": sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a",
                                                    lowercase=True).score,
            "exact_match": sum(h == r for h, r in zip(hypotheses, references)) / max(len(references), 1)}


# --- the task ----------------------------------------------------------------------------------

class Translator:
    """A trained run, ready to translate: model + the two tokenizers + the config."""

    def __init__(self, model, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer,
                 config: TranslateConfig) -> None:
        self.model, self.src_tokenizer, self.tgt_tokenizer, self.config = model, src_tokenizer, tgt_tokenizer, config
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, run: str | Path, device: str = "cpu") -> "Translator":
        from ..config import build

        run = Path(run)
        info, model = runs.load_trained(run, "translate", "a translation run", device)
        config = build(TranslateConfig, info["config"])
        return cls(model, load_tokenizer(run / "src_tokenizer.json", model.config.src_vocab_size),
                   load_tokenizer(run / "tgt_tokenizer.json", model.config.tgt_vocab_size),
                   config)

    def encode_sources(self, lines: list[str], what: str = "input") -> list[list[int]]:
        return encode_checked(self.src_tokenizer, lines, self.config.data.max_len, what, TRAINED_HINT)

    def translate_ids(self, sources: list[list[int]], beam_size: int | None = None) -> list[list[int]]:
        decode_config = self.config.decode
        if beam_size is not None:
            if not 1 <= beam_size <= MAX_BEAM:
                raise UserError(f"--beam must be between 1 and {MAX_BEAM}; got {beam_size}")
            decode_config = DecodeConfig(beam_size, decode_config.alpha, decode_config.max_output_len)
        return translate_ids(self.model, sources, decode_config, self.device)

    def translate(self, lines: list[str], beam_size: int | None = None) -> list[str]:
        return [decode(self.tgt_tokenizer, seq) for seq in self.translate_ids(self.encode_sources(lines), beam_size)]

    def attention(self, text: str, beam_size: int | None = None) -> dict[str, list[torch.Tensor]]:
        """The attention behind ``text``'s translation, from one teacher-forced pass over it: per layer
        (H, T_q, T_k) tensors under "encoder", "decoder", "cross" for the Transformer (T: the tokens of
        the source and of the output with its end mark), "cross" alone (one head) for an RNN's or a
        convolutional model's alignment."""
        source = self.encode_sources([text])[0]
        output = [i for i in self.translate_ids([source], beam_size)[0] if i != PAD_ID] or [EOS_ID]
        attention = self.teacher_forced_attention(source, output)
        return {kind: [w[0].float().cpu() for w in layers] for kind, layers in attention.items()}

    def teacher_forced_attention(self, source: list[int], output: list[int]) -> dict[str, list[torch.Tensor]]:
        """The weights of one pass that reads ``source`` and is fed ``<bos>`` + ``output`` but its last
        token: per layer (1, H, T_q, T_k) under "encoder", "decoder", "cross" (or "cross" alone)."""
        with torch.no_grad():
            _, attention = self.model(pad([source]).to(self.device),
                                      torch.tensor([[BOS_ID, *output[:-1]]], device=self.device), need_weights=True)
        return attention

    def alignment_png(self, source: str, path: Path) -> bool:
        """Cross-attention heatmap for one sentence (output × source tokens): a panel per head of the
        last decoder layer, or the one alignment of an RNN/conv model. False for models without one."""
        from ..viz.attention import plot_attention_heads  # matplotlib: only when drawing

        src_ids = self.encode_sources([source])[0]
        out_ids = [i for i in self.translate_ids([src_ids])[0] if i != PAD_ID]
        attention = self.teacher_forced_attention(src_ids, out_ids)
        if "cross" not in attention:
            return False
        weights = attention["cross"][-1][0]  # (H, T_out, T_src); H = 1 for an RNN's or conv's alignment
        what = "cross-attention, last decoder layer" if weights.size(0) > 1 else "alignment"
        plot_attention_heads(weights, [self.src_tokenizer.id_to_token(i) for i in src_ids],
                             [self.tgt_tokenizer.id_to_token(i) for i in out_ids], path, title=f"{what}: {source!r}")
        return True

    def evaluate(self, sources: list[str], references: list[str], beam_size: int | None = None) -> dict[str, float]:
        """BLEU and exact match of the translations, and perplexity (per token and per word) of the references."""
        src_ids = self.encode_sources(sources, "source")
        tgt_ids = encode_checked(self.tgt_tokenizer, references, self.config.data.max_len, "reference", TRAINED_HINT)
        hypotheses = [decode(self.tgt_tokenizer, ids) for ids in self.translate_ids(src_ids, beam_size)]
        with torch.no_grad():
            fit = perplexities(self.model, fixed_batches(src_ids, tgt_ids, 128), references, self.device)
        return {**score(hypotheses, references), **fit}


def train(config: TranslateConfig, run: Path, splits: dict[str, Pairs], resume: bool = False,
          log=print, *, parallel: SingleProcess | None = None) -> tuple[Translator, dict[str, Any]]:
    """Tokenise, train with the shared engine, then score the test split (or validation). Under
    torchrun, ``parallel`` is this rank's part: every rank trains on its rows of each batch, the main
    rank alone trains the tokenizers, writes the files and scores the result."""
    data, started = config.data, time.perf_counter()
    parallel = parallel or SingleProcess()
    if not parallel.is_main:
        log = lambda *args, **kwargs: None  # noqa: E731 — one rank speaks
    encoder = None
    if config.model.init and not resume:  # the encoder's settings, in the run's config too; a resumed run has them
        encoder = translate_init.load_encoder(config.model.init)
        config = translate_init.with_init(config, encoder)
        data = config.data
        log(translate_init.describe(config, encoder))
    if not resume:
        def prepare() -> None:
            runs.write_run(run, "translate", to_dict(config))
            src_tokenizer = encoder.tokenizer if encoder else train_tokenizer(splits["train"][0], data.tokenizer,
                                                                              data.vocab_size)
            save_tokenizer(src_tokenizer, run / "src_tokenizer.json")
            save_tokenizer(train_tokenizer(splits["train"][1], data.tokenizer, data.vocab_size), run / "tgt_tokenizer.json")
            runs.write_example(run, {"text": splits["valid"][0][0], "source": "the first validation sentence"})

        parallel.on_main(prepare)
    src_tok, tgt_tok = load_tokenizer(run / "src_tokenizer.json"), load_tokenizer(run / "tgt_tokenizer.json")
    hint = TRAINING_HINT  # where data.max_len is the pre-trained encoder's own, raising it would be refused
    if encoder and data.max_len >= encoder.model.config.max_len:
        hint = too_long_hint(config.model.init)
    shuffled = {"train", "valid"} if not (data.valid_src or data.valid_tsv) else set()  # cut by load_splits
    encoded = {name: (encode_checked(src_tok, s, data.max_len, f"{name} source", hint, name not in shuffled),
                      encode_checked(tgt_tok, t, data.max_len, f"{name} target", hint, name not in shuffled))
               for name, (s, t) in splits.items()}
    torch.manual_seed(config.train.seed)  # the same initial weights in every run of this seed
    model = build_model(config, src_tok.get_vocab_size(), tgt_tok.get_vocab_size())
    if encoder:
        translate_init.load_encoder_into(model, encoder)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters; "
        f"vocab {src_tok.get_vocab_size()} -> {tgt_tok.get_vocab_size()}; "
        f"{len(encoded['train'][0]):,} training pairs")

    t = config.train
    batches = BucketedBatches(*encoded["train"], t.batch_size, t.seed)
    valid_batches = fixed_batches(*encoded["valid"], t.batch_size)
    trainer = Trainer(model, t, run,
                      loss_fn=lambda m, b: token_loss(m, b, t.label_smoothing,
                                                      **teacher_forcing_at(config.model, trainer.progress.step, t.max_steps)),
                      batches=batches,
                      evaluate=lambda m: validation_metrics(m, valid_batches, trainer.device),
                      select="val_loss", d_model=config.model.d_model,  # d_model: the noam schedule's
                      parallel=parallel)
    progress = trainer.fit(resume=resume)
    if progress.stopped:
        log(progress.stopped)
    whole = parallel.export(trainer.model)  # the best weights as one plain model, on the main rank
    split = "test" if "test" in splits else "valid"  # scored with the best checkpoint
    sources, references = splits[split]

    def score_and_write() -> tuple[dict[str, Any], list[str]]:
        translator = Translator(whole.eval(), src_tok, tgt_tok, config)
        with torch.no_grad(), autocast(trainer.device, t.precision):
            metrics: dict[str, Any] = validation_metrics(translator.model, valid_batches, trainer.device)
        hypotheses = [decode(tgt_tok, ids) for ids in
                      translate_ids(translator.model, encoded[split][0], config.decode, trainer.device, t.precision)]
        metrics.update(score(hypotheses, references))
        with torch.no_grad(), autocast(trainer.device, t.precision):
            metrics.update(perplexities(translator.model, fixed_batches(*encoded[split], t.batch_size), references,
                                        trainer.device))
        metrics.update({"scored_split": split, "steps": progress.step, "best_step": progress.best_step,
                        "train_seconds": round(progress.train_seconds, 2),
                        "total_seconds": round(time.perf_counter() - started, 2),
                        "bleu_signature": "sacreBLEU corpus_bleu, tokenize=13a; bleu cased, bleu_lowercase lowercased",
                        "parameters": n_params, "processes": parallel.world})
        runs.write_metrics(run, metrics)
        # What the model reads for one scored sentence (a short, plain one when there is one to pick):
        # simple and context RNN models have no attention, and draw none.
        example = next((s for s in sources if s.isascii() and len(s) <= 80), sources[0])
        translator.alignment_png(example, run / "cross_attention.png")
        return metrics, hypotheses

    metrics, hypotheses = parallel.on_main(score_and_write)
    translator = Translator(trainer.model.eval(), src_tok, tgt_tok, config)
    return translator, {"metrics": metrics, "hypotheses": hypotheses, "sources": sources, "references": references}


# --- the registry entry --------------------------------------------------------------------------

class TranslateTask(Task):
    name = "translate"
    models = ("Transformer", "Seq2Seq", "ConvSeq2Seq")
    description = "translation: parallel text -> an encoder-decoder (Transformer, RNN or convolutional), BLEU"
    example = ("seqlab train translate --src train.de --tgt train.en --set model.d_model=256 --out runs/de-en\n"
               "  seqlab train translate --config multi30k-de-en\n  seqlab train translate --resume runs/de-en")
    config_class = TranslateConfig
    bigger_recipes = ("multi30k-de-en",)
    eval_flags = (Flag("src", "translate: source sentences, one a line", required=True),
                  Flag("ref", "translate: their reference translations, aligned with --src", required=True),
                  Flag("beam", "translate: beam width (default: the run's decode.beam_size)", type=int))
    predict_flags = (Flag("beam", "translate: beam width (default: the run's)", type=int),)

    def read_data(self, config: TranslateConfig) -> dict[str, Pairs]:
        return load_splits(config.data, config.train.seed)

    def check_new_run(self, config: TranslateConfig) -> None:
        if config.model.init:  # a bad --init must cost no existing run (--overwrite); a resumed run needs none
            translate_init.with_init(config, translate_init.load_encoder(config.model.init))

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        return train(config, run, data, resume=resume, log=log, parallel=parallel)[1]["metrics"]

    def summary(self, config, m) -> str:
        return (f"{m['scored_split']}: BLEU {m['bleu']:.2f} (lowercased {m['bleu_lowercase']:.2f}), "
                f"exact match {m['exact_match']:.2%}, val perplexity {m['val_perplexity']:.2f}")

    def load(self, run, device="cpu") -> Translator:
        return Translator.load(run, device)

    def evaluate(self, translator: Translator, options) -> dict[str, Any]:
        sources, references = text.read_parallel(options["src"], options["ref"])
        return translator.evaluate(sources, references, options["beam"])

    def predict(self, translator: Translator, inputs, options):
        if not inputs:
            raise UserError("nothing to translate: give text as arguments or lines on standard input")
        if unknown := unknown_pieces(translator.src_tokenizer, inputs):
            sys.stderr.write(unknown_note(unknown, "input") + "\n")
        return translator.translate(inputs, options.get("beam"))

    def input_limit(self, translator: Translator) -> int:
        return translator.config.data.max_len - 1

    def explore(self, translator: Translator, request) -> dict[str, Any]:
        if not request.text.strip():
            raise UserError("type an input first")
        return views.translation(translator, request.text, request.beam)

    def compare_flags(self) -> tuple[Flag, ...]:
        return (Flag("dates", "translate: the demo's multilingual date corpus", type=bool),)

    def compare_config(self, options: dict[str, Any]) -> str | None:
        return "compare-dates" if options.get("dates") else None  # its recipe: sizes for the date corpus

    def compare_data(self, config, options) -> dict[str, Pairs]:
        if options.get("dates"):
            if config.data.src or config.data.tsv:
                raise UserError("--dates is the data; give it or --src/--tgt or --tsv, not both")
            from .demo import make_splits

            return make_splits(config.train.seed)
        if not (config.data.src or config.data.tsv):
            raise UserError("give the data: --dates, --src/--tgt, --tsv, or a --config that names files")
        return self.read_data(config)

    def compare_columns(self, config) -> list[str]:
        return ["model", "parameters", "train_seconds", "seconds_per_epoch", "epochs", "val_perplexity",
                "scored_split", "word_perplexity", "bleu", "exact_match"]  # scored on the test split, or valid

    def compare_row(self, config, data, run, m) -> dict[str, Any]:
        epochs = m["steps"] * config.train.batch_size * config.train.grad_accum / len(data["train"][0])
        return m | {"seconds_per_epoch": m["train_seconds"] / max(epochs, 1e-9), "epochs": round(epochs, 2)}


register(TranslateTask())
