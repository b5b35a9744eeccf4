"""CenterNet (Zhou et al., 2019): the focal loss against hand-computed values, the Gaussian targets,
decoding a hand-made perfect output, and a tiny model that learns a few boxes."""

import math

import pytest
import torch

from seqlab.models import CenterNet, CenterNetConfig
from seqlab.models.centernet import (HEATMAP_PRIOR_BIAS, centernet_loss, decode, focal_loss, gaussian_heatmap,
                                     gaussian_radius)
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
