"""MR with self-pre-training (Krishna et al., ACL 2023): in each fold of MR's 10-fold cross-validation, a
masked LM (BERT's objective, Devlin et al. 2019 §3.1; or with ``--pretrain lm`` a causal LM, GPT's) is
pre-trained on that fold's *training* snippets only — no outside text, the held-out tenth never read —
and the classifier is fine-tuned from it (``--init``). Beside it, on the same fold and the same labelled
rows, the plain from-scratch Transformer of ``benchmarks/mr.py`` (``transformer``: 2 × 128, word2vec
vectors from the labelled texts, 1,000 steps; its 10-fold row is 74.25 %). Both at 10 %, 30 % and
100 % of the fold's labels (a stratified subset; pre-training always reads all of the fold's training
text, as a user with few labels and more unlabelled text would).

    .venv/bin/python benchmarks/mr_pretrain.py --data ../shared/data/mr [--folds-run 1,2] [--fractions 0.1,0.3,1]
        [--pretrain mlm|lm] [--pretrain-steps 3000] [--out runs/mr-pretrain] [--set-pretrain key=value ...]
        [--set key=value ...]

The folds are ``benchmarks/mr.py``'s (StratifiedKFold, shuffled, the seed's). ``--folds-run`` runs some of
them (1-based), for a machine where all ten do not fit in one sitting; the table then says how many folds
it averages, and a mean over some folds is not the 10-fold figure. Each row prints every fold's accuracy.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from mr import COMMON, SETTINGS, read_mr
from seqlab.config import load_config
from seqlab.tasks import classify_init, language_model, masked_lm, run_dir as runs
from seqlab.tasks.classify import ClassifyConfig, fit
from seqlab.tasks.language_model import LMConfig

# The masked LM: mlm-tiny's shape (4 × 128, 4 heads) over [CLS] + 94 + [SEP] tokens (MR's longest snippet
# is 90), WordPiece 4,000 on the fold's text.
QUIET = ["train.progress=false", "train.tensorboard=false", "train.precision='fp32'", "data.valid_fraction=0.05"]
MLM = ["data.block_size=94", *QUIET]
# Or a causal LM (GPT, Radford et al. 2018), `seqlab train lm`'s default shape (4 × 128, 4 heads) over 128
# byte-level BPE tokens (4,096); the classifier then reads each snippet causally and pools its last token.
LM = ["data.tokenizer='bpe'", "data.vocab_size=4096", "data.block_size=128", *QUIET]
PRETRAIN = {"mlm": (masked_lm, masked_lm.MLMConfig, "mlm-tiny", MLM), "lm": (language_model, LMConfig, None, LM)}
# Fine-tuning: the body's shape is the pre-trained one; one rate for head and body, small, as BERT
# fine-tunes (Devlin et al. §4: a few epochs at a small rate with warm-up) — 1,000 steps of 50 are ~6
# epochs with all of a fold's labels (the checkpoint is picked on a tenth of them either way).
FINE_TUNE = [*COMMON, "model.arch='transformer'", "model.dropout=0.1", "train.lr=2e-4", "train.body_lr_scale=1.0",
             "train.warmup_steps=100", "train.batch_size=50", "train.max_steps=1000", "train.eval_every=100"]
SCRATCH = [*COMMON, *SETTINGS["transformer"], "model.arch='transformer'"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with rt-polarity.pos and rt-polarity.neg")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--folds-run", default="", help="1-based folds to run, like 1,2 (default: all)")
    parser.add_argument("--fractions", default="0.1,0.3,1")
    parser.add_argument("--pretrain", choices=PRETRAIN, default="mlm", help="masked LM (BERT) or causal LM (GPT)")
    parser.add_argument("--pretrain-steps", type=int, default=3000, help="pre-training steps")
    parser.add_argument("--skip-scratch", action="store_true", help="only the pre-trained classifier (the "
                        "from-scratch rows of these folds are another run's: they do not depend on --pretrain)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/mr-pretrain"))
    parser.add_argument("--set-pretrain", action="append", default=[], help="overrides for the pre-training run")
    parser.add_argument("--set", action="append", default=[], help="overrides for the fine-tuned classifier")
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    texts, labels = read_mr(args.data)
    y = np.asarray([int(name == "pos") for name in labels])
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(texts, y))
    chosen = [int(k) for k in args.folds_run.split(",") if k] or list(range(1, args.folds + 1))
    seed = [f"train.seed={args.seed}"]
    scores: dict[tuple[str, float], list[float]] = {}
    for k in chosen:
        train_rows, test_rows = folds[k - 1]
        fold = runs.create_run_dir(args.out / f"fold-{k}", overwrite=True)
        corpus = fold / "train.txt"  # the fold's training snippets, the only text pre-training reads
        corpus.write_text("\n".join(texts[i] for i in train_rows) + "\n", encoding="utf-8")
        module, config_class, recipe, settings = PRETRAIN[args.pretrain]
        config = load_config(config_class, recipe, [*settings, *seed, f"data.text='{corpus}'",
                                                    f"train.max_steps={args.pretrain_steps}", *args.set_pretrain])
        started = time.perf_counter()
        _, m = module.train(config, runs.create_run_dir(fold / args.pretrain, overwrite=False), log=lambda *_: None)
        score = (f"masked-token accuracy {100 * m['val_accuracy']:.2f} %" if args.pretrain == "mlm" else
                 f"validation loss {m['val_loss']:.4f}")
        print(f"fold {k}: {args.pretrain} pre-training {m['steps']} steps, {time.perf_counter() - started:.0f} s, "
              f"{score} on its held-out 5 %", flush=True)
        for fraction in fractions:
            labelled = train_rows if fraction >= 1 else train_test_split(
                train_rows, train_size=fraction, stratify=y[train_rows], random_state=args.seed)[0]
            init = [*FINE_TUNE, f"model.init='{fold / args.pretrain}'", *args.set]
            for kind, overrides in [("scratch", SCRATCH)][args.skip_scratch:] + [("pretrained", init)]:
                cfg = load_config(ClassifyConfig, None, [*overrides, *seed])
                if kind == "pretrained":  # the body's settings, as train classify --init sets them
                    cfg = classify_init.with_init(cfg, classify_init.load_pretrained(cfg.model.init))
                run = runs.create_run_dir(fold / f"{kind}-{fraction:g}", overwrite=False)
                started = time.perf_counter()
                predict, _ = fit(cfg, run, [texts[i] for i in labelled], y[labelled], 2, log=lambda *_: None)
                accuracy = float((predict([texts[i] for i in test_rows]).argmax(-1) == y[test_rows]).mean())
                scores.setdefault((kind, fraction), []).append(accuracy)
                print(f"fold {k}: {kind}, {fraction:.0%} of the labels ({len(labelled):,}): {100 * accuracy:.2f} % "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    print("\n| labels | from scratch | pre-trained | folds | per fold (scratch / pre-trained) |\n|---|---|---|---|---|")
    for fraction in fractions:
        a, b = scores.get(("scratch", fraction), [math.nan] * len(chosen)), scores[("pretrained", fraction)]
        per_fold = ", ".join(f"{100 * x:.2f} / {100 * z:.2f}" for x, z in zip(a, b))
        print(f"| {fraction:.0%} | {100 * statistics.mean(a):.2f} | {100 * statistics.mean(b):.2f} | "
              f"{', '.join(map(str, chosen))} | {per_fold} |")


if __name__ == "__main__":
    main()
