"""Attention and confusion heatmaps: visible whitespace in the labels, a colour bar, the data's own scale."""

import matplotlib.figure
import numpy as np
import pytest
import torch

from seqlab.viz.attention import plot_attention_heads, shown, visible
from seqlab.viz.confusion import plot_confusion, plot_patch_attention


@pytest.fixture
def saved(monkeypatch):
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    return figures


def test_whitespace_shows_as_a_glyph():
    assert shown([" ", "\n", "\t", "a b", "年", "x\u200f"]) == ["␣", "↵", "⇥", "a␣b", "年", "x\\u200f"]
    assert visible("\u0120the\u010a") == "␣the↵"  # byte-level BPE's space and line break
    assert visible("\u00a0") == "␣"  # any other space too


def test_attention_heatmap_has_a_colour_bar_on_the_weights_own_scale(tmp_path, saved):
    weights = torch.softmax(torch.randn(3, 4, 5), dim=-1) * 0.5  # far below the 0-1 range
    plot_attention_heads(weights, list("abcde"), ["x", " ", "\n", "z"], tmp_path / "a.png")
    fig = saved[0]
    panels = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 3 + 1 and len(panels) == 3  # a panel per head, then the colour bar
    for ax in panels:
        norm = ax.images[0].norm
        assert norm.vmin == pytest.approx(weights.min().item()) and norm.vmax == pytest.approx(weights.max().item())
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["x", "␣", "↵", "z"]
    assert fig.axes[-1].get_ylabel() == "attention weight"


def test_confusion_matrix_has_a_colour_bar_from_its_counts(tmp_path, saved):
    plot_confusion(np.array([[3, 1], [2, 9]]), ["a", "b"], tmp_path / "c.png")
    fig = saved[0]
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "examples"
    norm = fig.axes[0].images[0].norm
    assert (norm.vmin, norm.vmax) == (1, 9)


def test_patch_attention_maps_have_colour_bars(tmp_path, saved):
    maps = np.stack([np.full((2, 2), 0.2), np.array([[0.0, 0.1], [0.3, 0.4]])])
    plot_patch_attention(np.zeros((2, 8, 8)), maps, ["a", "b"], tmp_path / "p.png")
    heat = [ax.images[0] for ax in saved[0].axes if ax.images and ax.get_title() == "attention"]
    assert [(im.norm.vmin, im.norm.vmax) for im in heat][1] == pytest.approx((0.0, 0.4))
    assert len(saved[0].axes) == 4 + 2  # two image/map pairs and a colour bar for each map
