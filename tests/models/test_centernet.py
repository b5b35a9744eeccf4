"""CenterNet (Zhou et al., 2019): the focal loss against hand-computed values, the Gaussian targets,
decoding a hand-made perfect output, and a tiny model that learns a few boxes."""

import math

import pytest
import torch

from seqlab.models import CenterNet, CenterNetConfig
from seqlab.models.centernet import (HEATMAP_PRIOR_BIAS, centernet_loss, centre_cells, decode, focal_loss,
                                     gaussian_heatmap, gaussian_radius)
from seqlab.models.set_loss import _xyxy, box_iou


def test_focal_loss_equals_the_hand_computed_value():
    # one class, 1×3 cells: Y = (1, 0.5, 0), Ŷ = sigmoid(0, 0, ln 3) = (0.5, 0.5, 0.75); N = 1
    logits = torch.tensor([0.0, 0.0, math.log(3.0)]).view(1, 1, 1, 3)
    target = torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
    positive = (1 - 0.5) ** 2 * math.log(0.5)
    negatives = (1 - 0.5) ** 4 * 0.5 ** 2 * math.log(0.5) + 1 ** 4 * 0.75 ** 2 * math.log(0.25)
    assert focal_loss(logits, target).item() == pytest.approx(-(positive + negatives), rel=1e-6)
    # two positives: divided by N = 2
    target2 = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3)
    want = -(2 * positive + 0.75 ** 2 * math.log(0.25)) / 2
    assert focal_loss(logits, target2).item() == pytest.approx(want, rel=1e-6)


def test_gaussian_radius_is_cornernets_for_a_square():
    # 8×8 cells, IoU 0.7: the third case's root, (b + sqrt(b² - 4ac)) / 2 with a = 2.8, b = -22.4, c = -19.2
    want = (-22.4 + math.sqrt(22.4 ** 2 + 4 * 2.8 * 19.2)) / 2
    got = gaussian_radius(torch.tensor([8.0]), torch.tensor([8.0]))
    assert got.item() == pytest.approx(want, rel=1e-5)


def cornernet_radius(height: float, width: float, m: float) -> float:
    """CornerNet's gaussian_radius (Law and Deng, 2018, as their code and CenterNet's write it), in plain math:
    the smallest root of three quadratics (both corners inside, both outside, one of each)."""
    b1, c1 = height + width, width * height * (1 - m) / (1 + m)
    b2, c2 = 2 * (height + width), (1 - m) * width * height
    a3, b3, c3 = 4 * m, -2 * m * (height + width), (m - 1) * width * height
    return min((b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2, (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2,
               (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2)


@pytest.mark.parametrize("min_overlap", [0.05, 0.3, 0.7, 0.9])
def test_gaussian_radius_equals_cornernets_three_cases_for_thin_tiny_and_large_boxes(min_overlap):
    sizes = [0.05, 0.1, 0.3, 1.0, 2.0, 8.0, 30.0]
    pairs = [(a, b) for a in sizes for b in sizes]
    height = torch.tensor([a for a, _ in pairs], dtype=torch.float64)
    width = torch.tensor([b for _, b in pairs], dtype=torch.float64)
    got = gaussian_radius(height, width, min_overlap)
    want = torch.tensor([cornernet_radius(a, b, min_overlap) for a, b in pairs], dtype=torch.float64)
    assert torch.allclose(got, want, rtol=1e-9, atol=0)


def test_gaussian_radius_of_nearly_square_boxes_in_float32_is_finite_and_accurate():
    # (h + w)² and 4hw nearly cancel for a near-square box: the result must still be the float64 one
    height, width = [38.34167, 271.57627, 0.1326279], [38.35083, 271.70378, 0.1326818]
    got = gaussian_radius(torch.tensor(height), torch.tensor(width))
    want = torch.tensor([cornernet_radius(a, b, 0.7) for a, b in zip(height, width)])
    assert torch.allclose(got, want, rtol=1e-5, atol=0)


def test_centre_cells_floor_the_centre_and_clamp_it_into_a_non_square_map():
    h, w = 4, 6
    boxes = torch.tensor([[0.5, 0.5, 0.1, 0.1],  # centre (3, 2): on a cell corner
                          [1.0, 1.0, 0.1, 0.1],  # (6, 4): the far edge, clamped into the last cell (5, 3)
                          [-0.1, -0.2, 0.1, 0.1],  # outside, before the first cell: (0, 0)
                          [0.99, 0.01, 0.1, 0.1],  # (5.94, 0.04)
                          [0.05, 0.9, 0.1, 0.1],  # (0.3, 3.6)
                          [0.7, 1.2, 0.1, 0.1]])  # (4.2, 4.8): below the map, clamped to row 3
    cell, centre = centre_cells(boxes, h, w)
    assert cell.dtype == torch.long
    assert cell.tolist() == [[3, 2], [5, 3], [0, 0], [5, 0], [0, 3], [4, 3]]
    want = torch.tensor([[3, 2], [6, 4], [-0.6, -0.8], [5.94, 0.04], [0.3, 3.6], [4.2, 4.8]])
    assert torch.allclose(centre, want, atol=1e-6)


def test_gaussian_target_of_a_wide_box_is_the_hand_made_gaussian_cut_to_its_square():
    # a 24×8-cell box centred on cell (16, 16) of a 32×32 map: CornerNet's radius for (8, 24) at IoU 0.7 is
    # -22.4 + sqrt(22.4² + 0.84·192) = 3.35 -> 3, so σ = 7/6 (a square 8×8 box would have radius 2)
    target = {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.75, 0.25]])}
    heat = gaussian_heatmap(target, 1, 32, 32)
    want = torch.zeros(1, 32, 32)
    sigma = 7 / 6
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            want[0, 16 + dy, 16 + dx] = math.exp(-(dx * dx + dy * dy) / (2 * sigma ** 2))
    assert torch.allclose(heat, want, atol=1e-6)


def test_gaussian_target_of_a_tiny_box_is_a_single_cell():
    # a 1×1-cell box: radius 0.55 -> 0, so only its centre cell is set (σ = 1/6)
    target = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.3, 0.6, 1 / 16, 1 / 16]])}
    heat = gaussian_heatmap(target, 2, 16, 16)
    want = torch.zeros(2, 16, 16)
    want[1, 9, 4] = 1.0
    assert torch.equal(heat, want)


def test_targets_and_loss_stay_on_the_device_of_the_inputs():
    # the meta device stands in for an accelerator: mixing it with CPU tensors raises
    boxes = torch.tensor([[0.5, 0.5, 0.75, 0.25], [0.2, 0.3, 0.25, 0.25]], device="meta")
    target = {"labels": torch.tensor([0, 1]), "boxes": boxes}
    assert gaussian_heatmap(target, 2, 8, 8).device.type == "meta"
    outputs = {key: torch.zeros(1, n, 8, 8, device="meta") for key, n in [("heatmap", 2), ("size", 2), ("offset", 2)]}
    assert all(v.device.type == "meta" for v in centernet_loss(outputs, [target]).values())


def test_centernet_loss_reads_size_and_offset_at_each_centre_cell_and_weighs_them_as_eq_3():
    h, w = 4, 8  # output cells; a non-square map and non-square boxes
    targets = [{"labels": torch.tensor([0, 1]),
                "boxes": torch.tensor([[0.3, 0.6, 0.5, 0.25],  # centre (2.4, 2.4): cell (2, 2), size (4, 1)
                                       [0.85, 0.1, 0.125, 0.75]])},  # centre (6.8, 0.4): cell (6, 0), size (1, 3)
               {"labels": torch.tensor([1]),
                "boxes": torch.tensor([[0.55, 0.3, 0.25, 0.5]])}]  # centre (4.4, 1.2): cell (4, 1), size (2, 2)
    torch.manual_seed(0)
    heat = torch.randn(2, 2, h, w)
    size = torch.full((2, 2, h, w), 100.0)  # far off everywhere but at the centres
    offset = torch.full((2, 2, h, w), 50.0)
    size[0, :, 2, 2] = torch.tensor([3.0, 1.0])  # |3 - 4| + |1 - 1| = 1
    size[0, :, 0, 6] = 0.0  # 1 + 3 = 4
    size[1, :, 1, 4] = 0.0  # 2 + 2 = 4
    offset[0, :, 2, 2] = offset[0, :, 0, 6] = offset[1, :, 1, 4] = 0.0  # |0.4|+|0.4|, |0.8|+|0.4|, |0.4|+|0.2|
    outputs = {"heatmap": heat, "size": size, "offset": offset}
    loss = centernet_loss(outputs, targets)
    want_heat = focal_loss(heat, torch.stack([gaussian_heatmap(t, 2, h, w) for t in targets]))
    assert loss["heatmap"].item() == pytest.approx(want_heat.item(), rel=1e-6)
    assert loss["size"].item() == pytest.approx(9 / 3, rel=1e-6)  # divided by the 3 objects
    assert loss["offset"].item() == pytest.approx(2.6 / 3, rel=1e-5)
    assert loss["loss"].item() == pytest.approx(want_heat.item() + 0.1 * 3 + 1.0 * 2.6 / 3, rel=1e-5)
    # one object: divided by 1
    one = centernet_loss({k: v[1:] for k, v in outputs.items()}, targets[1:])
    assert one["size"].item() == pytest.approx(4.0, rel=1e-6)
    assert one["offset"].item() == pytest.approx(0.6, rel=1e-5)
    weighted = centernet_loss(outputs, targets, size_weight=0.5, offset_weight=2.0)
    assert weighted["loss"].item() == pytest.approx(want_heat.item() + 0.5 * 3 + 2.0 * 2.6 / 3, rel=1e-5)


def test_gaussian_target_is_exactly_one_at_the_integer_centre_and_below_one_elsewhere():
    h = w = 24
    target = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.3, 0.6, 8 / 24, 8 / 24]])}  # centre (7.2, 14.4)
    heat = gaussian_heatmap(target, 3, h, w)
    assert heat.shape == (3, h, w)
    assert heat[1, 14, 7].item() == 1.0
    others = heat.clone()
    others[1, 14, 7] = 0
    assert others.max() < 1 and others.max() > 0
    assert heat[0].abs().sum() == 0 and heat[2].abs().sum() == 0
    # radius 2 for an 8×8 box (above): two cells away is inside the square, three is outside
    assert heat[1, 14, 9] > 0 and heat[1, 14, 10] == 0 and heat[1, 17, 7] == 0
    sigma = 5 / 6
    assert heat[1, 14, 8].item() == pytest.approx(math.exp(-1 / (2 * sigma ** 2)), rel=1e-6)


def test_decode_of_a_perfect_output_returns_that_box_and_class():
    h = w = 16
    heat = torch.full((1, 3, h, w), -10.0)
    heat[0, 2, 5, 9] = 3.0
    heat[0, 2, 5, 10] = 2.0  # a neighbour of the peak: not a local maximum, suppressed by the 3×3 max-pool
    size, offset = torch.zeros(1, 2, h, w), torch.zeros(1, 2, h, w)
    size[0, :, 5, 9] = torch.tensor([6.0, 4.0])
    offset[0, :, 5, 9] = torch.tensor([0.25, 0.5])
    [out] = decode({"heatmap": heat, "size": size, "offset": offset}, k=5)
    assert out["scores"].shape == (5,) and out["labels"].shape == (5,) and out["boxes"].shape == (5, 4)
    assert out["scores"][0].item() == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-6)
    assert out["labels"][0].item() == 2
    assert torch.equal(out["boxes"][0], torch.tensor([9.25 / 16, 5.5 / 16, 6 / 16, 4 / 16]))
    assert (out["scores"][1:] < 1e-3).all()


def test_config_and_output_shapes_and_prior_bias():
    with pytest.raises(ValueError, match="backbone_stride"):
        CenterNetConfig(3, backbone_stride=6)
    model = CenterNet(CenterNetConfig(5, image_size=32, backbone_width=4, head_width=8))
    out = model(torch.rand(2, 1, 32, 32))
    assert out["heatmap"].shape == (2, 5, 8, 8) and out["size"].shape == (2, 2, 8, 8)
    assert out["offset"].shape == (2, 2, 8, 8)
    assert torch.all(model.heatmap_head[-1].bias == HEATMAP_PRIOR_BIAS)
    # no objects in an image: the loss is still defined (only negatives)
    loss = centernet_loss(out, [{"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}] * 2)
    assert torch.isfinite(loss["loss"]) and loss["size"] == 0 and loss["offset"] == 0


def squares(n: int, size: int, generator: torch.Generator):
    """n images, each with two bright squares of sides 8–12 (class 0: value 1, class 1: value 0.5)."""
    images = torch.zeros(n, 1, size, size)
    targets = []
    for i in range(n):
        boxes, labels = [], []
        for label, (lo, hi) in enumerate([(0, size // 2 - 12), (size // 2, size - 12)]):
            side = int(torch.randint(8, 13, (1,), generator=generator))
            x = int(torch.randint(lo, hi + 1, (1,), generator=generator))
            y = int(torch.randint(0, size - side + 1, (1,), generator=generator))
            images[i, 0, y:y + side, x:x + side] = 1.0 - 0.5 * label
            boxes.append([(x + side / 2) / size, (y + side / 2) / size, side / size, side / size])
            labels.append(label)
        targets.append({"labels": torch.tensor(labels), "boxes": torch.tensor(boxes)})
    return images, targets


def test_a_tiny_model_learns_a_few_images_and_decode_recovers_their_boxes():
    torch.manual_seed(0)
    images, targets = squares(4, 32, torch.Generator().manual_seed(0))
    model = CenterNet(CenterNetConfig(2, image_size=32, backbone_width=8, head_width=16))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = centernet_loss(model(images), targets)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        found = decode(model(images), k=2)
    for got, want in zip(found, targets):
        for label, box in zip(want["labels"], want["boxes"]):
            mine = got["boxes"][got["labels"] == label]
            assert len(mine) == 1, f"class {label}: {got}"
            iou, _ = box_iou(_xyxy(mine), _xyxy(box[None]))
            assert iou.item() > 0.7  # about 0.9 with seeds 0 and 1


@pytest.mark.parametrize("name", ["n_classes", "channels", "image_size", "backbone_width", "head_width"])
def test_config_refuses_a_size_below_one_naming_it(name):
    with pytest.raises(ValueError, match=rf"^{name} must be at least 1, got 0$"):
        CenterNetConfig(**{"n_classes": 2, name: 0})


def test_forward_is_the_backbone_then_three_heads_of_3x3_conv_relu_1x1_conv():
    """§4: each head is "a separate 3×3 convolution, ReLU and another 1×1 convolution" on the backbone's
    map, written out here with F.conv2d on the model's own weights; the backbone is DETR's."""
    from seqlab.models.detr import Backbone

    torch.manual_seed(0)
    config = CenterNetConfig(3, channels=2, image_size=16, backbone_width=4, backbone_stride=4, head_width=6)
    model = CenterNet(config).eval()
    with torch.no_grad():  # move every weight off its initial value
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    backbone = Backbone(2, 4, 4, 6).eval()
    backbone.load_state_dict(model.backbone.state_dict())  # the same layers, weight for weight
    images = torch.rand(2, 2, 16, 16)
    with torch.no_grad():
        out = model(images)
        features = backbone(images)
    assert features.shape == (2, 6, 4, 4)
    for key, head, n_out in [("heatmap", model.heatmap_head, 3), ("size", model.size_head, 2),
                             ("offset", model.offset_head, 2)]:
        conv3, conv1 = head[0], head[-1]
        assert conv3.weight.shape == (6, 6, 3, 3) and conv1.weight.shape == (n_out, 6, 1, 1)
        hidden = torch.nn.functional.conv2d(features, conv3.weight, conv3.bias, padding=1).clamp(min=0)
        want = torch.nn.functional.conv2d(hidden, conv1.weight, conv1.bias)
        torch.testing.assert_close(out[key], want, rtol=1e-5, atol=1e-6)
    assert set(out) == {"heatmap", "size", "offset"}
