"""Trainer._step, one optimizer step, on a model small enough to check by hand: the gradient of the step's
micro-batches together (torch's autograd on their union), clipped as ``clip_norm`` says, the update Adam
makes with it, the summed loss and item count it reports, the precision it runs in, and the one-line error
for a loss that is not finite."""

import copy
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from seqlab.errors import UserError
from seqlab.train.config import TrainConfig
from seqlab.train.loop import Trainer, move


class Listed:
    """The given batches in turn, forever."""

    def __init__(self, batches) -> None:
        self.batches, self.i = batches, 0

    def __next__(self):
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        return batch

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state) -> None:
        self.i = state["i"]


@dataclass
class LineConfig:
    d_in: int = 3


class Line(nn.Linear):
    """y = x·wᵀ + b, with the config a checkpoint records."""

    def __init__(self, config: LineConfig = LineConfig()) -> None:
        super().__init__(config.d_in, 1)
        self.config = config


def mse(model, batch):
    """The mean squared error of a linear model and the number of items it averages over."""
    out = batch["x"] @ model.weight.T
    if batch.get("with_bias", torch.tensor(True)):
        out = out + model.bias
    return ((out.squeeze(-1) - batch["y"]) ** 2).mean(), batch["x"].shape[0]


def settings(**overrides):
    values = dict(max_steps=4, eval_every=2, log_every=2, lr=0.1, weight_decay=0.0, schedule="constant",
                  warmup_steps=0, precision="fp32", device="cpu", progress=False, tensorboard=False,
                  curves=False, clip_norm=0.0, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def tiny(run_dir, batches, loss_fn=mse, evaluate=None, **overrides):
    torch.manual_seed(0)
    return Trainer(Line(), settings(**overrides), run_dir, loss_fn, Listed(batches),
                   evaluate or (lambda m: {"val_loss": 1.0}), d_model=4)


def fit(trainer, resume: bool = False):
    """``trainer.fit(resume)``, where a KeyboardInterrupt (which pytest takes for Ctrl-C, ending the whole
    session rather than failing a test) fails the test: no stop was requested."""
    try:
        return trainer.fit(resume)
    except KeyboardInterrupt as interrupted:
        raise AssertionError("the run raised KeyboardInterrupt with no stop requested") from interrupted


def data(n: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randn(n, generator=g)


def test_two_micro_batches_take_the_gradient_of_their_union_clipped_by_hand_and_adams_step(tmp_path):
    x, y = data(8)
    parts = [{"x": x[:4], "y": y[:4]}, {"x": x[4:], "y": y[4:]}]
    t = tiny(tmp_path, parts, grad_accum=2, clip_norm=0.05)
    reference = copy.deepcopy(t.model)
    with torch.no_grad():
        part_losses = [((reference(b["x"]).squeeze(-1) - b["y"]) ** 2).mean().item() for b in parts]
    ((reference(x).squeeze(-1) - y) ** 2).mean().backward()  # one batch of all 8
    grads = [p.grad.clone() for p in reference.parameters()]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    assert norm > 0.05  # so that clipping acts
    clipped = [g * 0.05 / norm for g in grads]

    loss_sum, items = t._step()

    assert items == 8
    assert loss_sum == pytest.approx(4 * part_losses[0] + 4 * part_losses[1], rel=1e-6)
    for p, g in zip(t.model.parameters(), clipped):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-7)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=0.1, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0)
    for p, g in zip(reference.parameters(), clipped):
        p.grad = g
    optimizer.step()
    for ours, theirs in zip(t.model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_without_clipping_the_gradient_is_the_union_of_the_micro_batches_as_it_is(tmp_path):
    x, y = data(6)
    t = tiny(tmp_path, [{"x": x[:3], "y": y[:3]}, {"x": x[3:], "y": y[3:]}], grad_accum=2, clip_norm=0.0)
    reference = copy.deepcopy(t.model)
    ((reference(x).squeeze(-1) - y) ** 2).mean().backward()
    t._step()
    for ours, theirs in zip(t.model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad)


def test_a_parameter_a_step_does_not_reach_is_left_alone(tmp_path):
    """Its gradient is dropped (None), not zeroed: Adam skips it rather than moving it on its momentum."""
    x, y = data(4)
    t = tiny(tmp_path, [{"x": x, "y": y, "with_bias": torch.tensor(True)},
                        {"x": x, "y": y, "with_bias": torch.tensor(False)}])
    t._step()
    bias = t.model.bias.detach().clone()
    t._step()
    assert t.model.bias.grad is None
    assert torch.equal(t.model.bias.detach(), bias)


def test_the_step_moves_each_batch_to_the_trainers_device(tmp_path):
    x, y = data(4)
    seen = []

    def loss_fn(model, batch):
        seen.append({k: v.device.type for k, v in batch.items()})
        return mse(model, {"x": x, "y": y})  # a meta tensor holds no values: compute on the CPU copy

    t = tiny(tmp_path, [{"x": x, "y": y}], loss_fn=loss_fn)
    t.device = torch.device("meta")  # a device this machine always has, other than the CPU the batch is on
    t._step()
    assert seen == [{"x": "meta", "y": "meta"}]


def test_move_copies_every_tensor_to_the_device_without_blocking():
    calls = []

    class Recorded:
        def to(self, *args, **kwargs):
            calls.append((args, kwargs))
            return "moved"

    assert move({"a": Recorded(), "b": Recorded()}, torch.device("meta")) == {"a": "moved", "b": "moved"}
    assert calls == [((torch.device("meta"),), {"non_blocking": True})] * 2
    assert move({"x": torch.ones(2)}, torch.device("meta"))["x"].device.type == "meta"


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_forward_pass_runs_in_the_configured_precision(tmp_path, precision, dtype):
    x, y = data(4)
    seen = []

    def loss_fn(model, batch):
        seen.append((torch.is_autocast_enabled("cpu"), model(batch["x"]).dtype))
        return mse(model, batch)

    t = tiny(tmp_path, [{"x": x, "y": y}], loss_fn=loss_fn, precision=precision)
    assert t.precision == precision
    t._step()
    assert seen == [(precision == "bf16", dtype)]


def test_before_fit_an_auto_run_trains_in_fp32(tmp_path):
    """``auto`` is resolved by fit's trial; until then the trainer runs in full precision."""
    t = tiny(tmp_path, [{"x": torch.ones(1, 3), "y": torch.ones(1)}], precision="auto")
    assert t.precision == "fp32"


def not_finite(model, batch):
    loss, n = mse(model, batch)
    return loss * float("nan"), n


def test_a_loss_that_is_not_finite_stops_the_run_with_one_line_without_a_checkpoint_yet(tmp_path):
    x, y = data(4)
    t = tiny(tmp_path, [{"x": x, "y": y}], loss_fn=not_finite)
    with pytest.raises(UserError) as error:
        t._step()
    assert str(error.value) == ("the training loss became nan at step 1: the learning rate is likely too high "
                                "(train.lr=0.1) or fp32 overflowed; lower train.lr")


def test_a_loss_that_is_not_finite_in_bf16_names_fp32_and_the_checkpoint_kept(tmp_path):
    x, y = data(4)
    t = tiny(tmp_path, [{"x": x, "y": y}], loss_fn=not_finite, precision="bf16", lr=0.25)
    t.progress.step, t.progress.last_eval_step = 4, 0  # evaluated (and saved) at step 0
    with pytest.raises(UserError) as error:
        t._step()
    assert str(error.value) == ("the training loss became nan at step 5: the learning rate is likely too high "
                                "(train.lr=0.25) or bf16 overflowed; lower train.lr or use train.precision=fp32; "
                                "the last good checkpoint (step 0) is kept")
