"""DETR's matching cost and set loss with their default weights (the paper's: 1, 5, 2 and "no object" /
10), against the boxes' formulas and the losses written out by hand here, and scipy's assignment."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from seqlab.models.set_loss import HungarianMatcher, SetCriterion, _xyxy


def corners(box):
    cx, cy, w, h = box
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def giou(b, g):
    """GIoU (Rezatofighi et al., 2019) of two (cx, cy, w, h) boxes, in plain Python."""
    (bx0, by0, bx1, by1), (gx0, gy0, gx1, gy1) = corners(b), corners(g)
    inter = max(0.0, min(bx1, gx1) - max(bx0, gx0)) * max(0.0, min(by1, gy1) - max(by0, gy0))
    union = (bx1 - bx0) * (by1 - by0) + (gx1 - gx0) * (gy1 - gy0) - inter
    hull = (max(bx1, gx1) - min(bx0, gx0)) * (max(by1, gy1) - min(by0, gy0))
    return inter / union - (hull - union) / hull


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def test_xyxy_on_any_leading_shape():
    boxes = torch.rand(2, 3, 4)
    got = _xyxy(boxes)
    assert got.shape == (2, 3, 4)
    for i in range(2):
        for j in range(3):
            assert got[i, j].tolist() == pytest.approx(corners(boxes[i, j].tolist()))


def test_default_matching_cost_and_assignment():
    generator = torch.Generator().manual_seed(0)
    Q, n = 5, 3
    logits = torch.randn(Q, 4, generator=generator) * 2
    def random_boxes(count):  # centres in [.2, .8], sides in [.05, .35]
        return torch.cat([torch.rand(count, 2, generator=generator) * 0.6 + 0.2,
                          torch.rand(count, 2, generator=generator) * 0.3 + 0.05], 1)

    boxes = random_boxes(Q)
    target = {"labels": torch.tensor([2, 0, 2]), "boxes": random_boxes(n)}
    expected = np.zeros((Q, n))
    for q in range(Q):
        p = softmax(logits[q].tolist())
        for t in range(n):
            b, g = boxes[q].tolist(), target["boxes"][t].tolist()
            l1 = sum(abs(x - y) for x, y in zip(b, g))
            expected[q, t] = -1.0 * p[target["labels"][t]] + 5.0 * l1 - 2.0 * giou(b, g)
    matcher = HungarianMatcher()
    np.testing.assert_allclose(matcher.cost(logits, boxes, target).numpy(), expected, rtol=1e-5, atol=1e-5)
    rows, columns = linear_sum_assignment(expected)
    [(queries, objects)] = matcher(logits[None], boxes[None], [target])
    assert queries.tolist() == rows.tolist() and objects.tolist() == columns.tolist()


def test_default_set_loss_with_auxiliary_layers_by_hand():
    """Two images, three target boxes; each query is either near one target or far from all, so the
    matching is plain. Each layer's losses written out: the cross-entropy a weighted mean with "no
    object" weighing 0.1, L1 and 1 - GIoU summed over the matched pairs and divided by the 3 boxes; the
    returned losses summed over the last layer and the two auxiliary ones."""
    targets = [{"labels": torch.tensor([1, 0]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.2]])},
               {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
    near = {(0, 0): (0, 1), (0, 2): (0, 0), (1, 2): (1, 0)}  # (image, query) -> (image, target)
    far = torch.tensor([[0.92, 0.08, 0.05, 0.05], [0.08, 0.92, 0.04, 0.06]])
    generator = torch.Generator().manual_seed(5)

    def layer():
        boxes = torch.empty(2, 4, 4)  # 4 queries, 2 classes + no object: no size stands for another
        boxes[0, 1], boxes[0, 3], boxes[1, 0], boxes[1, 1], boxes[1, 3] = far[0], far[1], far[1], far[0], far[1]
        for (b, q), (i, t) in near.items():
            boxes[b, q] = targets[i]["boxes"][t] + (torch.rand(4, generator=generator) - 0.5) * 0.04
        return {"logits": torch.randn(2, 4, 3, generator=generator), "boxes": boxes}

    def by_hand(out):
        wanted = [[2, 2, 2, 2], [2, 2, 2, 2]]  # class 2 = no object
        l1 = giou_loss = 0.0
        for (b, q), (i, t) in near.items():
            wanted[b][q] = int(targets[i]["labels"][t])
            predicted, true = out["boxes"][b, q].tolist(), targets[i]["boxes"][t].tolist()
            l1 += sum(abs(x - y) for x, y in zip(predicted, true))
            giou_loss += 1 - giou(predicted, true)
        weights = {0: 1.0, 1: 1.0, 2: 0.1}
        nll = sum(weights[wanted[b][q]] * -math.log(softmax(out["logits"][b, q].tolist())[wanted[b][q]])
                  for b in range(2) for q in range(4))
        class_loss = nll / sum(weights[c] for row in wanted for c in row)
        return {"class": class_loss, "l1": l1 / 3, "giou": giou_loss / 3}

    outputs = {**layer(), "aux": [layer(), layer()]}
    expected = {name: sum(by_hand(out)[name] for out in [outputs, *outputs["aux"]]) for name in ("class", "l1", "giou")}
    expected["loss"] = expected["class"] + 5 * expected["l1"] + 2 * expected["giou"]
    criterion = SetCriterion(2, HungarianMatcher())
    got = criterion(outputs, targets)
    for name, value in expected.items():
        assert float(got[name]) == pytest.approx(value, rel=1e-5), name
    assert len(criterion.state_dict()) == 0  # nothing learned, nothing saved


def test_the_shares_of_a_batch_add_up_to_its_loss_and_gradient():
    """Data parallel: each rank holds some images of the batch and passes ``whole`` = (images, objects)
    of the batch. The shares' losses (each then divided by the whole batch's object count and summed
    class weights) add up to the one-process loss of the whole batch, and so do their gradients; with
    ``whole`` equal to the share itself the loss is bit for bit the loss without it."""
    generator = torch.Generator().manual_seed(11)
    counts = [2, 0, 3, 1, 1]  # objects per image; an image without any in the second share
    targets = [{"labels": torch.randint(0, 3, (n,), generator=generator),
                "boxes": torch.cat([0.2 + 0.6 * torch.rand(n, 2, generator=generator),
                                    0.05 + 0.2 * torch.rand(n, 2, generator=generator)], dim=1)} for n in counts]
    logits = torch.randn(3, 5, 4, 4, generator=generator, requires_grad=True)  # 3 layers, 5 images, 4 queries
    boxes = torch.rand(3, 5, 4, 4, generator=generator).mul(0.5).add(0.25).requires_grad_()

    def outputs(rows):
        layers = [{"logits": logits[i, rows], "boxes": boxes[i, rows]} for i in range(3)]
        return {**layers[0], "aux": layers[1:]}

    criterion = SetCriterion(3, HungarianMatcher(), no_object_weight=0.1)
    everything = slice(0, 5)
    want = criterion(outputs(everything), targets)
    want_grads = torch.autograd.grad(want["loss"], (logits, boxes))
    whole = (5, sum(counts))
    shares = [criterion(outputs(rows), targets[rows], whole) for rows in (slice(0, 2), slice(2, 5))]
    for name in ("loss", "class", "l1", "giou"):
        torch.testing.assert_close(shares[0][name] + shares[1][name], want[name], rtol=1e-6, atol=0, msg=name)
    got_grads = torch.autograd.grad(shares[0]["loss"] + shares[1]["loss"], (logits, boxes))
    for got, expected in zip(got_grads, want_grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    alone = criterion(outputs(everything), targets, whole)
    for name in ("loss", "class", "l1", "giou"):
        assert torch.equal(alone[name], want[name]), name
