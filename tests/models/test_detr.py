"""DETR (Carion et al., 2020): the Hungarian matching against brute force, the set loss's invariances and
hand-computed values, the layers against torch's Transformer layers, the model's outputs, and a tiny
model overfitting two images."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.models import DETR, DETRConfig, from_pretrained
from seqlab.models.detr_layers import DETRDecoderLayer, DETREncoderLayer, grid_positions
from seqlab.models.set_loss import HungarianMatcher, SetCriterion, box_iou
from seqlab.nn import MultiHeadAttention, PositionwiseFeedForward

from torch_reference import copy_attention  # tests/ is on sys.path (its conftest)


def giou_by_hand(b, g):
    """GIoU of two (cx, cy, w, h) boxes, step by step as Rezatofighi et al. (2019) define it."""
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    gx0, gy0, gx1, gy1 = g[0] - g[2] / 2, g[1] - g[3] / 2, g[0] + g[2] / 2, g[1] + g[3] / 2
    inter = max(0.0, min(bx1, gx1) - max(bx0, gx0)) * max(0.0, min(by1, gy1) - max(by0, gy0))
    union = b[2] * b[3] + g[2] * g[3] - inter
    hull = (max(bx1, gx1) - min(bx0, gx0)) * (max(by1, gy1) - min(by0, gy0))
    return inter / union - (hull - union) / hull


def test_box_iou_equals_pycocotools():
    from pycocotools import mask

    torch.manual_seed(0)
    xy, wh = torch.rand(7, 2) * 50, torch.rand(7, 2) * 30 + 1
    a = torch.cat([xy, xy + wh], dim=1).double()
    xy, wh = torch.rand(5, 2) * 50, torch.rand(5, 2) * 30 + 1
    b = torch.cat([xy, xy + wh], dim=1).double()
    as_xywh = lambda boxes: torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).numpy()  # noqa: E731
    expected = mask.iou(as_xywh(a), as_xywh(b), [0] * len(b))
    assert (expected > 0).any() and (expected == 0).any()  # overlapping pairs and disjoint ones
    assert np.allclose(box_iou(a, b)[0].numpy(), expected)


def small(queries="learned", **overrides):
    values = dict(image_size=32, backbone_width=8, d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                  d_ff=64, n_queries=6, queries=queries, dropout=0.0)
    return DETR(DETRConfig(3, **{**values, **overrides}))


def random_boxes(n, generator=None):
    """n valid normalised cxcywh boxes."""
    centres = torch.rand(n, 2, generator=generator) * 0.6 + 0.2
    sizes = torch.rand(n, 2, generator=generator) * 0.3 + 0.05
    return torch.cat([centres, sizes], dim=1)


def random_targets(counts, n_classes=3, generator=None):
    return [{"labels": torch.randint(0, n_classes, (n,), generator=generator), "boxes": random_boxes(n, generator)}
            for n in counts]


def test_matching_has_the_least_total_cost_of_all_assignments():
    generator = torch.Generator().manual_seed(0)
    matcher = HungarianMatcher(class_weight=1.0, l1_weight=5.0, giou_weight=2.0)
    Q = 5
    for n in [0, 1, 2, 3, 4, 4, 3]:
        logits = torch.randn(1, Q, 4, generator=generator)
        boxes = random_boxes(Q, generator)[None]
        [target] = random_targets([n], generator=generator)
        # The cost written out pair by pair: -p(class) + 5·L1 - 2·GIoU (§3.1).
        probability = logits[0].softmax(-1)

        def pair_cost(q, t):
            l1 = (boxes[0, q] - target["boxes"][t]).abs().sum()
            b, g = boxes[0, q], target["boxes"][t]
            giou = giou_by_hand(b.tolist(), g.tolist())
            return float(-probability[q, target["labels"][t]] + 5 * l1 - 2 * giou)

        [(queries, objects)] = matcher(logits, boxes, [target])
        assert queries.dtype == objects.dtype == torch.int64 and len(queries) == len(objects) == n
        assert torch.equal(queries, queries.sort().values) and sorted(objects.tolist()) == list(range(n))
        got = sum(pair_cost(q, t) for q, t in zip(queries.tolist(), objects.tolist()))
        best = min((sum(pair_cost(q, t) for t, q in enumerate(chosen)) for chosen in itertools.permutations(range(Q), n)),
                   default=0.0)
        assert got == pytest.approx(best, abs=1e-5)


def outputs_of(generator, B=3, Q=5, K=3, n_aux=2):
    def layer():
        return {"logits": torch.randn(B, Q, K + 1, generator=generator), "boxes": random_boxes(B * Q, generator).view(B, Q, 4)}

    return {**layer(), "aux": [layer() for _ in range(n_aux)]}


def test_the_loss_does_not_depend_on_the_order_of_targets_or_queries():
    generator = torch.Generator().manual_seed(1)
    criterion = SetCriterion(3, HungarianMatcher())
    outputs = outputs_of(generator)
    targets = random_targets([2, 0, 4], generator=generator)
    reference = criterion(outputs, targets)

    shuffled_targets = []
    for t in targets:
        order = torch.randperm(len(t["labels"]), generator=generator)
        shuffled_targets.append({"labels": t["labels"][order], "boxes": t["boxes"][order]})
    order = torch.randperm(5, generator=generator)
    permute = lambda layer: {"logits": layer["logits"][:, order], "boxes": layer["boxes"][:, order]}
    shuffled_outputs = {**permute(outputs), "aux": [permute(a) for a in outputs["aux"]]}
    for got in (criterion(outputs, shuffled_targets), criterion(shuffled_outputs, targets),
                criterion(shuffled_outputs, shuffled_targets)):
        for name in ("loss", "class", "l1", "giou"):
            torch.testing.assert_close(got[name], reference[name])


def test_loss_values_by_hand():
    # Query 0 is A = [0, 0, .5, .5] (xyxy), target B = [.25, .25, .75, .75]: intersection .25² = 1/16,
    # union 2·(1/4) - 1/16 = 7/16, IoU = 1/7; enclosing box [0, 0, .75, .75] has area 9/16, so
    # GIoU = 1/7 - (9/16 - 7/16) / (9/16) = 1/7 - 2/9 = -5/63, and the GIoU loss is 1 + 5/63 = 68/63.
    # L1 = |.25 - .5|·2 + 0 + 0 = 1/2. Query 1 is far off and left unmatched ("no object").
    logits = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 0.0, 3.0]]])  # K = 2 classes + no object
    boxes = torch.tensor([[[0.25, 0.25, 0.5, 0.5], [0.9, 0.9, 0.1, 0.1]]])
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]])}]
    got = SetCriterion(2, HungarianMatcher(), no_object_weight=0.1)({"logits": logits, "boxes": boxes}, targets)
    torch.testing.assert_close(got["giou"], torch.tensor(68 / 63))
    torch.testing.assert_close(got["l1"], torch.tensor(0.5))
    # Cross-entropy: query 0 should say class 0 (weight 1), query 1 "no object" (weight 0.1); weighted mean.
    log_softmax = logits[0].log_softmax(-1)
    expected = -(1.0 * log_softmax[0, 0] + 0.1 * log_softmax[1, 2]) / 1.1
    torch.testing.assert_close(got["class"], expected)
    torch.testing.assert_close(got["loss"], expected + 5 * 0.5 + 2 * torch.tensor(68 / 63))
    # No targets at all: only the "no object" cross-entropy remains.
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
    got = SetCriterion(2, HungarianMatcher())({"logits": logits, "boxes": boxes}, empty)
    assert got["l1"] == 0 and got["giou"] == 0
    torch.testing.assert_close(got["class"], -log_softmax[:, 2].mean())



def copy_common(ours, theirs, norms):
    with torch.no_grad():
        for p in ours.parameters():  # off the initial values: LayerNorms at 1 and 0 would hide a mix-up
            p.add_(torch.randn_like(p) * 0.1)
        theirs.linear1.load_state_dict(ours.ff.linear1.state_dict())
        theirs.linear2.load_state_dict(ours.ff.linear2.state_dict())
        for name in norms:
            getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
    copy_attention(ours.self_attn, theirs.self_attn)


def assert_same_outputs_and_input_gradients(out_ours, out_theirs, inputs_ours, inputs_theirs):
    torch.testing.assert_close(out_ours, out_theirs)
    weights = torch.randn_like(out_ours)
    (out_ours * weights).sum().backward()
    (out_theirs * weights).sum().backward()
    for a, b in zip(inputs_ours, inputs_theirs):
        torch.testing.assert_close(a.grad, b.grad)


def test_encoder_layer_with_zero_positions_is_torchs_post_ln_encoder_layer():
    torch.manual_seed(0)
    D, H, F_ = 16, 4, 32
    ours = DETREncoderLayer(MultiHeadAttention(D, H), PositionwiseFeedForward(D, F_), nn.LayerNorm(D), nn.LayerNorm(D),
                            dropout=0.0)
    theirs = nn.TransformerEncoderLayer(D, H, F_, dropout=0.0, batch_first=True, norm_first=False)
    copy_common(ours, theirs, ["norm1", "norm2"])
    x = torch.randn(2, 7, D, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    got, _ = ours(x, torch.zeros(7, D))
    assert_same_outputs_and_input_gradients(got, theirs(y), [x], [y])
    for a, b in [(ours.self_attn.w_q.weight.grad, theirs.self_attn.in_proj_weight.grad[:D]), (ours.ff.linear1.weight.grad, theirs.linear1.weight.grad),
                 (ours.norm1.weight.grad, theirs.norm1.weight.grad),
                 (ours.self_attn.w_o.weight.grad, theirs.self_attn.out_proj.weight.grad)]:
        torch.testing.assert_close(a, b)


def test_decoder_layer_with_zero_positions_is_torchs_post_ln_decoder_layer():
    torch.manual_seed(1)
    D, H, F_ = 16, 4, 32
    ours = DETRDecoderLayer(MultiHeadAttention(D, H), MultiHeadAttention(D, H), PositionwiseFeedForward(D, F_),
                            nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D), dropout=0.0)
    theirs = nn.TransformerDecoderLayer(D, H, F_, dropout=0.0, batch_first=True, norm_first=False)
    copy_common(ours, theirs, ["norm1", "norm2", "norm3"])
    copy_attention(ours.cross_attn, theirs.multihead_attn)
    x, memory = torch.randn(2, 5, D, requires_grad=True), torch.randn(2, 9, D, requires_grad=True)
    y, memory2 = x.detach().clone().requires_grad_(), memory.detach().clone().requires_grad_()
    got, _ = ours(x, memory, torch.zeros(2, 5, D), torch.zeros(9, D))
    assert_same_outputs_and_input_gradients(got, theirs(y, memory2), [x, memory], [y, memory2])
    for a, b in [(ours.cross_attn.w_k.weight.grad, theirs.multihead_attn.in_proj_weight.grad[D:2 * D]),
                 (ours.norm3.weight.grad, theirs.norm3.weight.grad),
                 (ours.self_attn.w_v.bias.grad, theirs.self_attn.in_proj_bias.grad[2 * D:])]:
        torch.testing.assert_close(a, b)


def test_positions_go_into_queries_and_keys_only_as_the_papers_code():
    # DETR's layers (the paper's code, Fig. 10 of the supplement) written out with torch's modules:
    # q = k = x + pos, value = x; cross-attention query = x + query_pos, key = memory + pos, value = memory.
    torch.manual_seed(2)
    D, H, F_ = 16, 4, 32
    ours = DETREncoderLayer(MultiHeadAttention(D, H), PositionwiseFeedForward(D, F_), nn.LayerNorm(D), nn.LayerNorm(D),
                            dropout=0.0)
    theirs = nn.TransformerEncoderLayer(D, H, F_, dropout=0.0, batch_first=True)
    copy_common(ours, theirs, ["norm1", "norm2"])
    x, pos = torch.randn(2, 7, D), torch.randn(7, D)
    ff = lambda layer, h: layer.linear2(torch.relu(layer.linear1(h)))
    h = theirs.norm1(x + theirs.self_attn(x + pos, x + pos, x)[0])
    torch.testing.assert_close(ours(x, pos)[0], theirs.norm2(h + ff(theirs, h)))

    ours = DETRDecoderLayer(MultiHeadAttention(D, H), MultiHeadAttention(D, H), PositionwiseFeedForward(D, F_),
                            nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D), dropout=0.0)
    theirs = nn.TransformerDecoderLayer(D, H, F_, dropout=0.0, batch_first=True)
    copy_common(ours, theirs, ["norm1", "norm2", "norm3"])
    copy_attention(ours.cross_attn, theirs.multihead_attn)
    x, memory, query_pos, pos = torch.randn(2, 5, D), torch.randn(2, 9, D), torch.randn(2, 5, D), torch.randn(9, D)
    h = theirs.norm1(x + theirs.self_attn(x + query_pos, x + query_pos, x)[0])
    h = theirs.norm2(h + theirs.multihead_attn(h + query_pos, memory + pos, memory)[0])
    torch.testing.assert_close(ours(x, memory, query_pos, pos)[0], theirs.norm3(h + ff(theirs, h)))


def test_grid_positions_follow_the_papers_formula():
    # Row 1, column 0 of a 2×3 map: y = 2/2, x = 1/3 (normalised, ×2π); features [sin, cos, sin, cos] of
    # y·2π / 10000^(0/4), y·2π / 10000^(2/4), then the same for x (d_model = 8: 4 features each).
    pe = grid_positions(2, 3, 8)
    assert pe.shape == (6, 8)
    y, x = 2 * math.pi * 1.0, 2 * math.pi / 3
    expected = [math.sin(y), math.cos(y), math.sin(y / 100), math.cos(y / 100),
                math.sin(x), math.cos(x), math.sin(x / 100), math.cos(x / 100)]
    torch.testing.assert_close(pe[3], torch.tensor(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("queries", ["learned", "anchor"])
def test_shapes_boxes_and_attention_weights(queries):
    torch.manual_seed(0)
    model = small(queries).eval()
    images = torch.rand(2, 1, 32, 32)
    out = model(images, need_weights=True)
    assert out["logits"].shape == (2, 6, 4) and out["boxes"].shape == (2, 6, 4)
    assert len(out["aux"]) == 1 and out["aux"][0]["logits"].shape == (2, 6, 4) and out["aux"][0]["boxes"].shape == (2, 6, 4)
    assert out["feature_size"] == (4, 4)
    assert [w.shape for w in out["encoder_attention"]] == [(2, 4, 16, 16)] * 2
    assert [w.shape for w in out["cross_attention"]] == [(2, 4, 6, 16)] * 2
    for w in out["encoder_attention"] + out["cross_attention"]:
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    for layer in [out, *out["aux"]]:
        assert ((layer["boxes"] >= 0) & (layer["boxes"] <= 1)).all()
    plain = model(images)
    assert set(plain) == {"logits", "boxes", "aux"}
    torch.testing.assert_close(plain["logits"], out["logits"])  # asking for the weights changes nothing else
    torch.testing.assert_close(plain["boxes"], out["boxes"])


def test_anchor_queries_start_at_their_anchors():
    model = small("anchor")  # the last box layer starts at zero: the first prediction is the anchor itself
    out = model(torch.rand(1, 1, 32, 32))
    expected = torch.tensor([[0.5, 0.5, 0.1, 0.1], [0.75, 0.25, 0.1, 0.1], [0.25, 0.75, 0.1, 0.1]])
    torch.testing.assert_close(out["aux"][0]["boxes"][0, :3], expected)


@pytest.mark.parametrize("queries", ["learned", "anchor"])
def test_a_gradient_reaches_every_parameter(queries):
    torch.manual_seed(0)
    model = small(queries, backbone_stride=16)
    with torch.no_grad():  # off the zero-initialised last box layer, which would stop the gradient before it
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    out = model(torch.rand(2, 1, 32, 32))
    targets = random_targets([2, 1], generator=torch.Generator().manual_seed(0))
    SetCriterion(3, HungarianMatcher())(out, targets)["loss"].backward()
    without = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # The first decoder self-attention's values are those of the zero content: W_V·0 has no weight gradient.
    assert without == ["decoder.0.self_attn.w_v.weight"]


def test_config_is_checked():
    for bad, message in [(dict(image_size=36), "divisible by backbone_stride"), (dict(n_heads=3), "divisible by n_heads"),
                         (dict(backbone_stride=6), "power of two"), (dict(queries="random"), "queries must be"),
                         (dict(n_queries=0), "n_queries must be at least 1")]:
        with pytest.raises(ValueError, match=message):
            DETRConfig(3, **bad)


def test_save_and_load_give_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = small("anchor")
    model(torch.rand(4, 1, 32, 32))  # training mode: the batch norms' running statistics move
    model.eval().save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path).eval()
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        a, b = model(images), loaded(images)
    assert torch.equal(a["logits"], b["logits"]) and torch.equal(a["boxes"], b["boxes"])


def test_a_tiny_model_overfits_two_images():
    torch.manual_seed(0)
    images = torch.zeros(2, 1, 32, 32)
    images[0, :, 4:14, 6:18] = 1.0  # a bright rectangle on black: x 6..18, y 4..14
    images[1, :, 16:30, 12:28] = 1.0
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[12 / 32, 9 / 32, 12 / 32, 10 / 32]])},
               {"labels": torch.tensor([0]), "boxes": torch.tensor([[20 / 32, 23 / 32, 16 / 32, 14 / 32]])}]
    model = DETR(DETRConfig(1, image_size=32, backbone_width=8, d_model=32, n_heads=4, n_encoder_layers=1,
                            n_decoder_layers=2, d_ff=64, n_queries=4, dropout=0.0))
    criterion = SetCriterion(1, HungarianMatcher())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(150):
        loss = criterion(model(images), targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
