"""The text-classification task's settings: the ``[data]``, ``[model]`` and ``[train]`` sections of a
``seqlab train classify`` recipe (``seqlab.tasks.classify`` trains with them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import check_model, option
from ..data.tokenizer import check_vocab_size
from ..errors import UserError
from ..parallel.config import ParallelConfig
from ..parallel.runtime import check_layout
from ..train.config import TrainConfig

NEURAL = ("transformer", "lstm", "conv1d")
MAX_AUGMENT_COPIES = 100  # each copy is the training set again, in memory and in every epoch


@dataclass
class ClassifyDataConfig:
    csv: str = option("", "texts and labels: .tsv is tab-separated, anything else comma-separated", path=True)
    text_col: str = option("text", "the text column (default text)")
    label_col: str = option("label", "the label column (default label)")
    encoding: str = option("utf-8", "the file's encoding (default utf-8; e.g. latin-1)")
    test_fraction: float = 0.1
    valid_fraction: float = 0.1  # of the training rows, to pick the best checkpoint
    cv: int = option(0, "K-fold cross-validation instead of one split (default 0 = off)")
    vocab_size: int = 30000
    max_len: int = 256  # tokens; a longer text is an error, not silently cut

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 0.5 or not 0.0 < self.valid_fraction < 0.5:
            raise ValueError("data.test_fraction and data.valid_fraction must be in (0, 0.5)")
        if self.cv == 1 or self.cv < 0:
            raise ValueError(f"data.cv must be 0 (off) or at least 2; got {self.cv}")
        if self.max_len < 1 or self.vocab_size < 8:  # the special tokens take the first places
            raise ValueError(f"data.max_len must be at least 1 and data.vocab_size at least 8; got {self.max_len} "
                             f"and {self.vocab_size}")
        check_vocab_size(self.vocab_size)


@dataclass
class ClassifyModelConfig:
    arch: Literal["transformer", "lstm", "conv1d", "tfidf", "bow", "nbsvm"] = option(
        "transformer", "the classifier (default transformer)", flag="model")
    d_model: int = 128  # embedding width (= word-vector size)
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    # with init: the tokenizer's [CLS] token (an mlm run) or the last token (an lm run), whatever this says
    pool: Literal["mean", "cls"] = "mean"
    # transformer; rotary: Su et al. (2021); relative: Shaw et al. (2018)
    positional: Literal["learned", "sinusoidal", "rotary", "relative"] = "learned"
    max_relative_position: int = 16  # positional="relative": offsets clipped to [-k, k], k = this
    norm_first: bool = True  # transformer: pre-LN; false: post-LN (BERT's)
    activation: Literal["gelu", "relu", "gelu_tanh"] = "gelu"  # transformer
    pooler: bool = False  # transformer: BERT's pooler, a Linear and tanh on the pooled state before the head
    # A masked-LM run (seqlab train mlm) or a Transformer LM run (seqlab train lm) whose body and tokenizer
    # the Transformer starts from (seqlab.tasks.classify_init): its model settings replace the ones above
    init: str = option("", "start the Transformer from this run's body and tokenizer: a seqlab train mlm run "
                           "(its encoder, pooling [CLS]) or a seqlab train lm run (its layers, run causally, "
                           "pooling the last token)", path=True, flag="init")
    hidden_size: int = 128  # lstm
    n_filters: int = 100  # conv1d
    widths: list[int] = field(default_factory=lambda: [3, 4, 5])  # conv1d
    dropout: float = 0.3
    embeddings: str = "random"  # random, cbow, skipgram (word2vec on the training text) or a GloVe file
    freeze_embeddings: bool = False
    word2vec_epochs: int = 10
    C: float = 4.0  # tfidf / bow / nbsvm: inverse regularisation of the logistic regression
    nb_alpha: float = 1.0  # nbsvm: smoothing of the feature counts in the log-count ratio
    nb_beta: float = 1.0  # nbsvm: Wang & Manning's interpolation towards naive Bayes (1 = none; they use 0.25)
    # tfidf / bow / nbsvm (and a linear teacher): word 1- to word_ngrams-grams and, unless 0, the
    # character 2- to char_ngrams-grams inside words, which catch shared stems ("gripping", "grip").
    word_ngrams: int = 2
    char_ngrams: int = 0
    # Distillation into a neural model: a linear teacher ("nbsvm", "tfidf" or "bow"; "" = none; with C,
    # nb_alpha, nb_beta and the n-gram ranges above), the share of the loss that follows its probabilities, and
    # the folds that keep each training text out of the teacher that labels it.
    teacher: Literal["", "nbsvm", "tfidf", "bow"] = ""
    teacher_weight: float = 0.7
    teacher_folds: int = 5
    # Extra training texts for the student (Tang et al., 2019): this many copies of each training text
    # with each word dropped with probability augment_drop; a copy keeps its text's label and gets the
    # teacher's probabilities for the altered text.
    augment_copies: int = 0
    augment_drop: float = 0.15

    def __post_init__(self) -> None:
        if not self.widths or self.word2vec_epochs < 1:
            raise ValueError(f"model.widths needs at least one width and model.word2vec_epochs must be at least 1; "
                             f"got {self.widths} and {self.word2vec_epochs}")
        check_model(self, self.n_heads if self.arch == "transformer" else 1, self.n_layers, self.d_ff,
                    self.hidden_size, self.n_filters, *self.widths)
        if self.nb_alpha <= 0 or self.C <= 0:
            raise ValueError(f"model.nb_alpha and model.C must be positive; got {self.nb_alpha} and {self.C}")
        if not 0.0 <= self.nb_beta <= 1.0:
            raise ValueError(f"model.nb_beta must be in [0, 1]; got {self.nb_beta}")
        if self.word_ngrams < 1 or self.char_ngrams == 1 or self.char_ngrams < 0:
            raise ValueError(f"model.word_ngrams must be at least 1 and model.char_ngrams 0 (off) or at least 2; "
                             f"got {self.word_ngrams} and {self.char_ngrams}")
        if self.positional == "rotary" and self.arch == "transformer" and self.d_model // self.n_heads % 2:
            raise ValueError(f"model.positional=rotary turns pairs of channels: the head width d_model / n_heads "
                             f"must be even; got {self.d_model // self.n_heads}")
        if self.init and self.arch != "transformer":
            raise ValueError(f"model.init (--init) starts a Transformer from a pre-trained encoder; "
                             f"--model {self.arch} cannot take one")
        if self.init and self.embeddings != "random":
            raise ValueError("model.init brings its own embeddings; leave model.embeddings at random")
        if self.teacher and self.arch not in NEURAL:
            raise ValueError(f"model.teacher distils into a neural model (transformer, lstm, conv1d), "
                             f"not {self.arch}")
        if self.augment_copies and not self.teacher:
            raise ValueError("model.augment_copies labels its texts with the teacher; set model.teacher too")
        if not 0 <= self.augment_copies <= MAX_AUGMENT_COPIES or not 0.0 < self.augment_drop < 1.0:
            raise ValueError(f"model.augment_copies must be in 0..{MAX_AUGMENT_COPIES} and model.augment_drop in "
                             f"(0, 1); got {self.augment_copies} and {self.augment_drop}")
        if not 0.0 <= self.teacher_weight <= 1.0 or self.teacher_folds < 2:
            raise ValueError(f"model.teacher_weight must be in [0, 1] and model.teacher_folds at least 2; "
                             f"got {self.teacher_weight} and {self.teacher_folds}")


@dataclass
class ClassifyTrainConfig(TrainConfig):
    """The engine's settings and, for a Transformer started from a pre-trained encoder (model.init),
    how gently its body trains: at ``body_lr_scale`` times the head's rate (discriminative fine-tuning,
    Howard & Ruder, 2018 §3.2), its embeddings and first ``freeze_layers`` layers not at all."""

    body_lr_scale: float = 0.1  # with model.init only
    freeze_layers: int = 0  # with model.init only; at least 1 also freezes the embeddings

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.body_lr_scale <= 10.0 or self.freeze_layers < 0:
            raise ValueError(f"train.body_lr_scale must be in (0, 10] and train.freeze_layers at least 0; "
                             f"got {self.body_lr_scale} and {self.freeze_layers}")


def _classify_train_defaults() -> ClassifyTrainConfig:
    return ClassifyTrainConfig(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, warmup_steps=50,
                       max_steps=1500, batch_size=50, label_smoothing=0.0, eval_every=100)


@dataclass
class ClassifyConfig:
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    train: ClassifyTrainConfig = field(default_factory=_classify_train_defaults)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def __post_init__(self) -> None:
        self.parallel.data_parallel_only("classify")
        if self.model.init and self.parallel.dp_mode == "fsdp":  # fully_shard swaps the parameters that
            # carry the body's rate (train.body_lr_scale): the body would train at the head's rate
            raise ValueError("--init trains the pre-trained body at its own rate, which parallel.dp_mode='fsdp' "
                             "would lose: use parallel.dp_mode='ddp'")

    def check_layout(self, world: int) -> None:
        """A UserError unless this model trains on ``world`` processes (the neural ones do, data
        parallel; scikit-learn's linear models fit on one) and the [parallel] layout fits."""
        if world > 1 and self.model.arch not in NEURAL:
            raise UserError(one_process_only(self.model.arch))
        check_layout(self.parallel, world, self.train.batch_size)


def one_process_only(arch: str) -> str:
    return (f"train classify --model {arch} fits a scikit-learn model on one process; drop --nproc "
            f"(transformer, lstm and conv1d train on several)")
