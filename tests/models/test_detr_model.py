"""DETR's model (Carion et al., 2020) and DAB-DETR's anchor queries (Liu et al., 2022): the backbone against
a ResNet written out here (He et al., 2016, Figure 2 left), the whole forward pass against one written out
from §3.2 with torch's own attention and the model's weights copied in, the config's checks and what the
config builds."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models import DETR, DETRConfig
from seqlab.models.detr import Backbone, BasicBlock, BoxHead, check_sizes
from seqlab.models.detr_layers import DETRDecoderLayer, DETREncoderLayer

from torch_reference import torch_attention  # tests/ is on sys.path (its conftest)


# --- the config's checks -------------------------------------------------------------------------------

POSITIVE = ("n_classes", "channels", "image_size", "backbone_width", "d_model", "n_heads", "n_encoder_layers",
            "n_decoder_layers", "d_ff", "n_queries")


@pytest.mark.parametrize("name", POSITIVE)
def test_each_size_must_be_at_least_one(name):
    kwargs = {"n_classes": 3, name: 0}
    with pytest.raises(ValueError, match=rf"^{name} must be at least 1, got 0$"):
        DETRConfig(**kwargs)


def test_sizes_of_one_and_strides_of_two_are_accepted():
    config = DETRConfig(1, channels=1, backbone_width=1, d_model=4, n_heads=1, n_encoder_layers=1,
                        n_decoder_layers=1, d_ff=1, n_queries=1, image_size=2, backbone_stride=2)
    assert config.image_size == 2 and config.backbone_stride == 2
    for stride in (2, 4, 8, 16, 32):
        assert DETRConfig(3, image_size=64, backbone_stride=stride).backbone_stride == stride


def test_check_sizes_messages():
    ok = dict(a=1, b=5, backbone_stride=4, image_size=8)
    check_sizes(SimpleNamespace(**ok), ("a", "b"))
    with pytest.raises(ValueError, match=r"^b must be at least 1, got -2$"):
        check_sizes(SimpleNamespace(**{**ok, "b": -2}), ("a", "b"))
    for stride in (1, 0, 3, 6, 12, 24):
        with pytest.raises(ValueError, match=rf"^backbone_stride must be a power of two \(4, 8 or 16\), got {stride}$"):
            check_sizes(SimpleNamespace(**{**ok, "backbone_stride": stride, "image_size": 72}), ("a",))
    with pytest.raises(ValueError, match=r"^image_size \(36\) must be divisible by backbone_stride \(8\)$"):
        check_sizes(SimpleNamespace(**{**ok, "backbone_stride": 8, "image_size": 36}), ("a",))


def test_config_messages_and_bounds():
    with pytest.raises(ValueError, match=r"^d_model \(30\) must be divisible by n_heads \(4\)$"):
        DETRConfig(3, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match=r"^d_model must be a multiple of 4 for the sine positions, got 6$"):
        DETRConfig(3, d_model=6, n_heads=2)
    for dropout in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"^dropout must be in \[0, 1\), got {dropout}$"):
            DETRConfig(3, dropout=dropout)
    for dropout in (0.0, 0.5, 0.99):
        assert DETRConfig(3, dropout=dropout).dropout == dropout
    with pytest.raises(ValueError, match=r"^queries must be 'learned' or 'anchor', got 'box'$"):
        DETRConfig(3, queries="box")
    assert DETRConfig(3, queries="learned").queries == "learned" and DETRConfig(3, queries="anchor").queries == "anchor"


# --- the backbone: a ResNet written out ------------------------------------------------------------------

class ReferenceBlock(nn.Module):
    """He et al. (2016), Figure 2 left: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), 3×3 convolutions
    without bias, the first with the stride; a 1×1 convolution + batch norm on the shortcut when the shape
    changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + shortcut)


def reference_backbone(channels, width, stride, d_model):
    """3×3 stem (no bias) + batch norm + ReLU, log2(stride) stride-2 blocks doubling the width, 1×1 projection
    with bias."""
    layers = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(int(math.log2(stride))):
        layers.append(ReferenceBlock(width, 2 * width, 2))
        width *= 2
    return nn.Sequential(*layers, nn.Conv2d(width, d_model, 1, bias=True))


def perturb(module, scale=0.1):
    """Off the initial values (batch norms at identity, zero-initialised layers), the running statistics
    too, so that a mix-up cannot hide."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.2)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


def assert_same_as_reference(ours, reference, x):
    reference.load_state_dict(ours.state_dict())  # strict: the same layers, shapes and biases
    for train in (True, False):
        ours.train(train), reference.train(train)
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-4)


def test_basic_blocks_are_resnets():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 9, 10)
    block = BasicBlock(6, 6)  # default stride 1, no shortcut convolution
    perturb(block)
    assert_same_as_reference(block, ReferenceBlock(6, 6, 1), x)
    assert block(x).shape == (2, 6, 9, 10)
    downsample = nn.Sequential(nn.Conv2d(6, 12, 1, stride=2, bias=False), nn.BatchNorm2d(12))
    block = BasicBlock(6, 12, stride=2, downsample=downsample)
    perturb(block)
    assert_same_as_reference(block, ReferenceBlock(6, 12, 2), x)
    assert block(x).shape == (2, 12, 5, 5)


@pytest.mark.parametrize("stride", [2, 8, 16])
def test_backbone_is_a_small_resnet(stride):
    torch.manual_seed(stride)
    ours = Backbone(channels=3, width=4, stride=stride, d_model=20)
    perturb(ours)
    x = torch.randn(2, 3, 32, 32)
    assert_same_as_reference(ours, reference_backbone(3, 4, stride, 20), x)
    assert ours(x).shape == (2, 20, 32 // stride, 32 // stride)


def test_box_head_is_a_three_layer_perceptron_whose_last_layer_starts_at_zero():
    torch.manual_seed(0)
    head = BoxHead(12)
    assert torch.count_nonzero(head[-1].weight) == 0 and torch.count_nonzero(head[-1].bias) == 0
    assert torch.count_nonzero(head[0].weight) > 0 and torch.count_nonzero(head[2].weight) > 0
    perturb(head)
    reference = nn.Sequential(nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 4))
    x = torch.randn(3, 5, 12)
    assert_same_as_reference(head, reference, x)


# --- what the config builds ------------------------------------------------------------------------------

def config(queries, **overrides):
    values = dict(channels=2, image_size=32, backbone_width=4, backbone_stride=8, d_model=24, n_heads=3,
                  n_encoder_layers=2, n_decoder_layers=3, d_ff=40, n_queries=7, queries=queries, dropout=0.25)
    return DETRConfig(5, **{**values, **overrides})


def assert_attention(attention, c):
    assert (attention.d_model, attention.n_heads, attention.dropout) == (c.d_model, c.n_heads, c.dropout)


@pytest.mark.parametrize("queries", ["learned", "anchor"])
def test_the_config_builds_the_layers_it_names(queries):
    c = config(queries)
    model = DETR(c)
    assert len(model.encoder) == 2 and len(model.decoder) == 3
    assert all(type(layer) is DETREncoderLayer for layer in model.encoder)
    assert all(type(layer) is DETRDecoderLayer for layer in model.decoder)
    for layer in [*model.encoder, *model.decoder]:
        assert_attention(layer.self_attn, c)
        ff = layer.ff
        assert (ff.linear1.in_features, ff.linear1.out_features, ff.linear2.out_features) == (24, 40, 24)
        assert layer.ff.dropout.p == 0.25 and layer.dropout.p == 0.25
        norms = [layer.norm1, layer.norm2] + ([layer.norm3] if isinstance(layer, DETRDecoderLayer) else [])
        assert all(isinstance(n, nn.LayerNorm) and n.normalized_shape == (24,) for n in norms)
    for layer in model.decoder:
        assert_attention(layer.cross_attn, c)
    assert len({id(m) for layer in model.decoder for m in (layer.norm1, layer.norm2, layer.norm3)}) == 9
    assert isinstance(model.decoder_norm, nn.LayerNorm) and model.decoder_norm.normalized_shape == (24,)
    assert (model.class_head.in_features, model.class_head.out_features) == (24, 6)  # 5 classes + no object
    assert [type(m) for m in model.box_head] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert model.box_head[0].in_features == 24 and model.box_head[-1].out_features == 4
    if queries == "learned":
        assert isinstance(model.query_position, nn.Parameter) and model.query_position.shape == (7, 24)
        assert not hasattr(model, "anchors")
    else:
        assert not hasattr(model, "query_position")
        # The first 7 points after the origin of the unscrambled 2-D Sobol sequence; width = height = 0.1.
        centres = torch.tensor([[0.5, 0.5], [0.75, 0.25], [0.25, 0.75], [0.375, 0.375], [0.875, 0.875],
                                [0.625, 0.125], [0.125, 0.625]])
        expected = torch.cat([centres, torch.full((7, 2), 0.1)], dim=1)
        assert isinstance(model.anchors, nn.Parameter)
        torch.testing.assert_close(model.anchors.data, torch.log(expected / (1 - expected)))
        projection = model.anchor_projection
        assert [type(m) for m in projection] == [nn.Linear, nn.ReLU, nn.Linear]
        assert (projection[0].in_features, projection[0].out_features, projection[2].out_features) == (48, 24, 24)


# --- the forward pass written out (§3.2; DAB-DETR §4.1-4.2) ---------------------------------------------

def sine(coords, n):
    """Each coordinate c in [0, 1] to n features: feature i is sin (even i) or cos (odd i) of
    c·2π / 10000^(2⌊i/2⌋/n) (DETR's PositionEmbeddingSine, normalised, scale 2π). (..., k) -> (..., k·n)."""
    i = torch.arange(n)
    angles = coords[..., None] * 2 * math.pi / 10000 ** (2 * (i // 2) / n)
    return torch.where(i % 2 == 0, angles.sin(), angles.cos()).flatten(-2)


def image_positions(h, w, D):
    """(h·w, D), row-major: D/2 features of the row (r + 1) / h, then D/2 of the column (c + 1) / w (the
    paper's code normalises the cumulative index by its last value + 1e-6)."""
    rows = (torch.arange(h) + 1.0) / (h + 1e-6)
    cols = (torch.arange(w) + 1.0) / (w + 1e-6)
    yx = torch.stack([rows[:, None].expand(h, w), cols[None, :].expand(h, w)], dim=-1).reshape(h * w, 2)
    return torch.cat([sine(yx[:, :1], D // 2), sine(yx[:, 1:], D // 2)], dim=-1)



def layer_norm(x, norm):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, eps=1e-5)


def two_layer(x, first, second):
    return F.linear(F.relu(F.linear(x, first.weight, first.bias)), second.weight, second.bias)


def reference_forward(model, images):
    """Eval mode (no dropout). Returns the per-decoder-layer predictions and the attention maps."""
    c = model.config
    D, H = c.d_model, c.n_heads
    backbone = reference_backbone(c.channels, c.backbone_width, c.backbone_stride, D)
    backbone.load_state_dict(model.backbone.state_dict())
    features = backbone.eval()(images)  # (B, D, h, w)
    B, _, h, w = features.shape
    memory = features.permute(0, 2, 3, 1).reshape(B, h * w, D)  # row-major
    pos = image_positions(h, w, D)
    encoder_maps = []
    for layer in model.encoder:  # q = k = memory + pos, value = memory; post-LN
        q = memory + pos
        attended, weights = torch_attention(layer.self_attn, H).eval()(q, q, memory, average_attn_weights=False)
        encoder_maps.append(weights)
        memory = layer_norm(memory + attended, layer.norm1)
        memory = layer_norm(memory + two_layer(memory, layer.ff.linear1, layer.ff.linear2), layer.norm2)

    x = torch.zeros(B, c.n_queries, D)
    if c.queries == "learned":
        query_pos = model.query_position[None].expand(B, -1, -1)
    else:
        anchors = torch.sigmoid(model.anchors)[None].expand(B, -1, -1)  # (B, Q, 4)
    predictions, cross_maps = [], []
    for layer in model.decoder:
        if c.queries == "anchor":  # positional query = MLP(sine(anchor)), D/2 features per coordinate
            projection = model.anchor_projection
            query_pos = two_layer(sine(anchors, D // 2), projection[0], projection[2])
        q = x + query_pos
        x = layer_norm(x + torch_attention(layer.self_attn, H).eval()(q, q, x)[0], layer.norm1)
        attended, weights = torch_attention(layer.cross_attn, H).eval()(x + query_pos, memory + pos, memory,
                                                                average_attn_weights=False)
        cross_maps.append(weights)
        x = layer_norm(x + attended, layer.norm2)
        x = layer_norm(x + two_layer(x, layer.ff.linear1, layer.ff.linear2), layer.norm3)
        out = layer_norm(x, model.decoder_norm)
        head = model.box_head
        delta = F.linear(F.relu(two_layer(out, head[0], head[2])), head[4].weight, head[4].bias)
        if c.queries == "learned":
            boxes = torch.sigmoid(delta)
        else:  # refine the anchor in inverse-sigmoid space; the next layer's anchor
            boxes = torch.sigmoid(torch.logit(anchors, eps=1e-5) + delta)
            anchors = boxes
        predictions.append({"logits": F.linear(out, model.class_head.weight, model.class_head.bias), "boxes": boxes})
    return predictions, encoder_maps, cross_maps, (h, w)


@pytest.mark.parametrize("queries", ["learned", "anchor"])
def test_forward_is_the_papers_detr_written_out(queries):
    torch.manual_seed(0)
    model = DETR(config(queries)).eval()
    perturb(model, 0.2)  # the box head's last layer starts at zero: move it so that its output counts
    images = torch.rand(2, 2, 32, 32)
    with torch.no_grad():
        got = model(images, need_weights=True)
        plain = model(images)
        predictions, encoder_maps, cross_maps, size = reference_forward(model, images)
    assert set(got) == {"logits", "boxes", "aux", "encoder_attention", "cross_attention", "feature_size"}
    assert set(plain) == {"logits", "boxes", "aux"} and len(got["aux"]) == len(plain["aux"]) == 2
    close = dict(atol=2e-5, rtol=1e-4)
    for result in (got, plain):
        for ours, theirs in zip([*result["aux"], result], predictions, strict=True):
            assert ours["logits"].shape == (2, 7, 6) and ours["boxes"].shape == (2, 7, 4)
            torch.testing.assert_close(ours["logits"], theirs["logits"], **close)
            torch.testing.assert_close(ours["boxes"], theirs["boxes"], **close)
    assert all(set(a) == {"logits", "boxes"} for a in got["aux"])
    assert got["feature_size"] == size == (4, 4)
    for ours, theirs in zip(got["encoder_attention"], encoder_maps, strict=True):
        torch.testing.assert_close(ours, theirs, **close)
    for ours, theirs in zip(got["cross_attention"], cross_maps, strict=True):
        torch.testing.assert_close(ours, theirs, **close)
    # Each layer's predictions differ from the next (the aux list is the earlier layers', in order).
    assert not torch.allclose(got["aux"][0]["boxes"], got["aux"][1]["boxes"])
    assert not torch.allclose(got["aux"][1]["logits"], got["logits"])


@pytest.mark.parametrize("queries", ["learned", "anchor"])
def test_the_model_runs_in_bfloat16(queries):
    # the positions are computed in float32 and must be cast to the model's dtype
    torch.manual_seed(0)
    model = DETR(config(queries, n_decoder_layers=2)).eval().to(torch.bfloat16)
    with torch.no_grad():
        out = model(torch.rand(1, 2, 32, 32, dtype=torch.bfloat16))
    assert out["logits"].dtype == out["boxes"].dtype == torch.bfloat16


@pytest.mark.parametrize("queries", ["learned", "anchor"])
def test_positions_are_made_on_the_device_of_the_features(queries):
    # the meta device stands in for an accelerator: mixing it with CPU tensors raises
    model = DETR(config(queries, n_encoder_layers=1, n_decoder_layers=1)).eval().to("meta")
    out = model(torch.zeros(1, 2, 32, 32, device="meta"))
    assert out["logits"].device.type == out["boxes"].device.type == "meta"
