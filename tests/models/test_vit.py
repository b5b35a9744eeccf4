"""VisionTransformer against a ViT assembled from torch's own modules (Dosovitskiy et al., 2021 §3.1:
patches embedded by a P×P convolution of stride P, a [CLS] token in front, learned positions, a pre-LN
encoder with GELU, LayerNorm, the [CLS] output classified), with every weight copied over."""

import torch
from torch import nn

from seqlab.models.vit import VisionTransformer, VisionTransformerConfig, attention_rollout

IMAGE, C, P, D, H, F, L, K = 8, 3, 2, 16, 2, 32, 2, 5  # N = (8 / 2)² = 16 patches


class TorchViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patches = nn.Conv2d(C, D, P, stride=P)
        self.cls = nn.Parameter(torch.zeros(1, 1, D))
        self.position = nn.Parameter(torch.zeros(1, (IMAGE // P) ** 2 + 1, D))
        layer = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, L, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, K)

    def forward(self, images):
        x = self.patches(images).flatten(2).transpose(1, 2)  # (B, N, D), patches row by row
        x = torch.cat([self.cls.expand(x.size(0), 1, D), x], dim=1) + self.position
        return self.head(self.norm(self.encoder(x))[:, 0])


def copy_into(theirs: torch.Tensor, ours: torch.Tensor) -> None:
    assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
    theirs.copy_(ours)


def copied(model: VisionTransformer) -> TorchViT:
    ref = TorchViT().eval()
    with torch.no_grad():
        copy_into(ref.patches.weight, model.patch_embedding.weight.view(D, C, P, P))  # a patch is (C, P, P) flattened
        copy_into(ref.patches.bias, model.patch_embedding.bias)
        copy_into(ref.cls, model.cls)
        copy_into(ref.position, model.position.embedding.weight[None])
        for ours, theirs in zip(model.layers, ref.encoder.layers):
            attn = ours.self_attn
            copy_into(theirs.self_attn.in_proj_weight, torch.cat([attn.w_q.weight, attn.w_k.weight, attn.w_v.weight]))
            copy_into(theirs.self_attn.in_proj_bias, torch.cat([attn.w_q.bias, attn.w_k.bias, attn.w_v.bias]))
            copy_into(theirs.self_attn.out_proj.weight, attn.w_o.weight)
            copy_into(theirs.self_attn.out_proj.bias, attn.w_o.bias)
            for name in ("linear1", "linear2"):
                copy_into(getattr(theirs, name).weight, getattr(ours.ff, name).weight)
                copy_into(getattr(theirs, name).bias, getattr(ours.ff, name).bias)
            for name in ("norm1", "norm2"):
                copy_into(getattr(theirs, name).weight, getattr(ours, name).weight)
                copy_into(getattr(theirs, name).bias, getattr(ours, name).bias)
        for name in ("norm", "head"):
            copy_into(getattr(ref, name).weight, getattr(model, name).weight)
            copy_into(getattr(ref, name).bias, getattr(model, name).bias)
    return ref


def test_vit_equals_one_built_from_torchs_modules():
    torch.manual_seed(0)
    model = VisionTransformer(VisionTransformerConfig(IMAGE, K, channels=C, patch_size=P, d_model=D, n_heads=H,
                                                      n_layers=L, d_ff=F)).eval()
    with torch.no_grad():  # off the initial values: norms not ones, biases not zeros, a large [CLS] vector
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    images = torch.randn(3, C, IMAGE, IMAGE)
    expected = copied(model)(images)
    torch.testing.assert_close(model(images), expected, rtol=1e-5, atol=1e-5)
    logits, maps = model(images, need_weights=True)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_vit_parameters_have_the_checkpoint_layout():
    model = VisionTransformer(VisionTransformerConfig(IMAGE, K, channels=C, patch_size=P, d_model=D, n_heads=H,
                                                      n_layers=1, d_ff=F))
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters() if not name.startswith("layers.")}
    assert shapes == {"patch_embedding.weight": (D, C * P * P), "patch_embedding.bias": (D,), "cls": (1, 1, D),
                      "position.embedding.weight": (16 + 1, D), "norm.weight": (D,), "norm.bias": (D,),
                      "head.weight": (K, D), "head.bias": (K,)}


def test_dropout_rates_reach_each_place():
    def rates(**settings):
        model = VisionTransformer(VisionTransformerConfig(IMAGE, K, d_model=D, n_heads=H, n_layers=2, d_ff=F,
                                                          dropout=0.3, **settings))
        assert model.dropout.p == 0.3
        return {(layer.dropout.p, layer.self_attn.dropout, layer.ff.dropout.p) for layer in model.layers}

    assert rates() == {(0.3, 0.3, 0.3)}  # None = dropout
    assert rates(attention_dropout=0.1, ff_dropout=0.2) == {(0.3, 0.1, 0.2)}


def test_cls_vector_starts_as_vits_normal_with_std_0_02():
    torch.manual_seed(0)
    cls = VisionTransformer(VisionTransformerConfig(IMAGE, K, d_model=512, n_heads=H, n_layers=1, d_ff=F)).cls
    assert 0.015 < cls.std().item() < 0.025 and abs(cls.mean().item()) < 0.005


def test_rollout_makes_its_identity_on_the_weights_device():
    # The meta device holds shapes only: an identity made on the CPU could not be added to it.
    weights = torch.rand(2, 3, 5, 5, device="meta")
    rollout = attention_rollout([weights, weights])
    assert rollout.device.type == "meta" and rollout.shape == (2, 4)
