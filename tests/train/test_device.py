"""``--device auto`` (the default): cuda if available, then mps, then cpu; a device the machine lacks or
torch does not know is one line."""

import types

import pytest
import torch

from seqlab.cli.parser import build_parser
from seqlab.errors import UserError
from seqlab.train import device
from seqlab.train.config import TrainConfig


def machine(monkeypatch, cuda: bool, mps: bool, gpus: int = 1) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"),
                                                 (False, True, "mps"), (False, False, "cpu")])
def test_auto_takes_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    machine(monkeypatch, cuda, mps)
    assert device.resolve_device("auto") == torch.device(expected)


def test_auto_never_takes_mps_for_a_job_of_several_processes(monkeypatch):
    machine(monkeypatch, cuda=False, mps=True)
    assert device.resolve_device("auto", processes=2) == torch.device("cpu")


def test_auto_takes_cuda_only_with_a_gpu_for_each_process_of_the_machine(monkeypatch):
    machine(monkeypatch, cuda=True, mps=False, gpus=1)
    assert device.resolve_device("auto", processes=2) == torch.device("cpu")  # rank 1 would have no cuda:1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # under torchrun: the processes of this machine
    assert device.resolve_device("auto") == torch.device("cpu")
    machine(monkeypatch, cuda=True, mps=False, gpus=2)
    assert device.resolve_device("auto", processes=2) == torch.device("cuda")


def test_named_devices_are_taken_as_named(monkeypatch):
    machine(monkeypatch, cuda=True, mps=True, gpus=2)
    assert device.resolve_device("cpu") == torch.device("cpu")
    assert device.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert device.resolve_device("mps") == torch.device("mps")


@pytest.mark.parametrize("name, says", [("cuda", "CUDA is not available"), ("cuda:0", "CUDA is not available"),
                                        ("mps", "MPS) is not available"), ("tpu", "--device must be auto, cpu"),
                                        ("cuda:x", "--device must be auto, cpu"), ("", "--device must be"),
                                        ("cuda:", "--device must be auto, cpu")])
def test_a_device_this_machine_lacks_or_torch_does_not_know_is_refused(monkeypatch, name, says):
    machine(monkeypatch, cuda=False, mps=False)
    with pytest.raises(UserError) as error:
        device.resolve_device(name)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_mps_is_refused_in_one_whole_line(monkeypatch):
    machine(monkeypatch, cuda=True, mps=False)
    with pytest.raises(UserError, match=r"^--device mps: Apple's Metal \(MPS\) is not available on this machine$"):
        device.resolve_device("mps")


def test_a_torch_without_an_mps_backend_has_no_mps(monkeypatch):
    monkeypatch.setattr(torch, "backends", types.SimpleNamespace())  # torch before 1.12: no torch.backends.mps
    assert device.mps_available() is False


def test_auto_device_defaults_to_one_process(monkeypatch):
    machine(monkeypatch, cuda=False, mps=True)
    assert device.auto_device() == torch.device("mps")  # a job of several processes would get the cpu


def test_a_cuda_index_past_the_machines_gpus_is_refused(monkeypatch):
    machine(monkeypatch, cuda=True, mps=False, gpus=2)
    with pytest.raises(UserError, match="has 2 CUDA device"):
        device.resolve_device("cuda:2")


def test_auto_is_the_default_of_training_and_of_every_command_that_takes_device():
    assert TrainConfig().device == "auto"
    parser = build_parser()
    for command in (["eval", "RUN"], ["predict", "RUN"], ["translate", "RUN"], ["generate", "RUN"]):
        assert parser.parse_args(command).device == "auto", command
    with pytest.raises(ValueError, match="train.device must be auto, cpu"):
        TrainConfig(device="gpu")


def test_precision_auto_keeps_fp32_on_mps():
    from seqlab.train import precision

    assert precision.candidates(torch.device("mps")) == ["fp32"]
    assert precision.candidates(torch.device("cpu")) == ["fp32", "bf16"]
