"""Attention heatmaps: which source positions each output position looked at."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


# What stands for a character a label would otherwise show as nothing, or as a break in the label.
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍",
           # byte-level BPE's stand-ins for the same bytes (GPT-2's byte-to-character table)
           "\u0120": "␣", "\u010a": "↵", "\u0109": "⇥"}


def visible(token: str) -> str:
    """One token as a label: a space as ␣, a line break as ↵, a tab as ⇥ (byte-level BPE's Ġ, Ċ, ĉ
    too), any other space as ␣ and any other invisible character as its escape (``\\u200f``)."""
    def one(c: str) -> str:
        if c in VISIBLE:
            return VISIBLE[c]
        if c.isspace():
            return "␣"
        return c if c.isprintable() else repr(c)[1:-1]
    return "".join(map(one, token))


def shown(tokens: list[str]) -> list[str]:
    """Tokens as tick labels (see :func:`visible`); the explorer's ``show`` in ``explore/static/app.js``
    draws the same glyphs."""
    return [visible(t) for t in tokens]


def plot_attention_heads(weights: torch.Tensor, source_tokens: list[str], output_tokens: list[str],
                         path: Path, title: str = "cross-attention",
                         axes_names: tuple[str, str] = ("source", "output")) -> None:
    """weights: (H, T_out, T_src), rows summing to 1 -> one heatmap panel per head, saved as PNG.
    ``axes_names``: what the columns (attended) and the rows (attending) are. The colours span the
    figure's own smallest to largest weight (shared by its panels, shown by one colour bar): a long
    input's weights sit far below 1 and would all look dark on a fixed 0-1 scale."""
    heads = weights.size(0)
    weights = weights.float().cpu()
    low, high = weights.min().item(), weights.max().item()
    cols = min(heads, 4)
    rows = math.ceil(heads / cols)
    width = max(3.0, 0.28 * len(source_tokens) + 1.2)
    height = max(2.5, 0.28 * len(output_tokens) + 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 1.0, height * rows), squeeze=False,
                             layout="constrained")  # leaves room for the colour bar
    for head in range(rows * cols):
        ax = axes[head // cols][head % cols]
        if head >= heads:
            ax.axis("off")
            continue
        image = ax.imshow(weights[head].numpy(), cmap="viridis", vmin=low, vmax=high, aspect="auto")
        ax.set_xticks(range(len(source_tokens)), shown(source_tokens), fontsize=8)
        ax.set_yticks(range(len(output_tokens)), shown(output_tokens), fontsize=8)
        ax.set_xlabel(axes_names[0])
        ax.set_ylabel(axes_names[1])
        if heads > 1:
            ax.set_title(f"head {head + 1}", fontsize=9)
    fig.suptitle(title)
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.9, fraction=0.03, pad=0.01)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_self_attention(weights: torch.Tensor, tokens: list[str], path: Path, title: str) -> None:
    """weights: (H, T, T) of one self-attention layer over ``tokens``: each row, a token reading the others."""
    plot_attention_heads(weights, tokens, tokens, path, title, axes_names=("key: the token read",
                                                                           "query: the token reading"))
