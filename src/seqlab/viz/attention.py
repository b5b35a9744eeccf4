"""Attention heatmaps: which source positions each output position looked at."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def shown(tokens: list[str]) -> list[str]:
    """Tokens as tick labels: a space as ␣, a line break or tab as its escape."""
    return [repr(t)[1:-1] if t.strip() else "␣" for t in tokens]


def plot_attention_heads(weights: torch.Tensor, source_tokens: list[str], output_tokens: list[str],
                         path: Path, title: str = "cross-attention",
                         axes_names: tuple[str, str] = ("source", "output")) -> None:
    """weights: (H, T_out, T_src), rows summing to 1 -> one heatmap panel per head, saved as PNG.
    ``axes_names``: what the columns (attended) and the rows (attending) are."""
    heads = weights.size(0)
    cols = min(heads, 4)
    rows = math.ceil(heads / cols)
    width = max(3.0, 0.28 * len(source_tokens) + 1.2)
    height = max(2.5, 0.28 * len(output_tokens) + 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for head in range(rows * cols):
        ax = axes[head // cols][head % cols]
        if head >= heads:
            ax.axis("off")
            continue
        ax.imshow(weights[head].float().cpu().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(source_tokens)), shown(source_tokens), fontsize=8)
        ax.set_yticks(range(len(output_tokens)), shown(output_tokens), fontsize=8)
        ax.set_xlabel(axes_names[0])
        ax.set_ylabel(axes_names[1])
        if heads > 1:
            ax.set_title(f"head {head + 1}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_self_attention(weights: torch.Tensor, tokens: list[str], path: Path, title: str) -> None:
    """weights: (H, T, T) of one self-attention layer over ``tokens``: each row, a token reading the others."""
    plot_attention_heads(weights, tokens, tokens, path, title, axes_names=("key: the token read",
                                                                           "query: the token reading"))
