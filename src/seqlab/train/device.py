"""Which device a command computes on: ``--device`` (``train.device``) resolved to a ``torch.device``.

``auto``, the default, takes the fastest this machine has: a CUDA GPU, then Apple's Metal (MPS), then the
CPU. A job of several processes never takes MPS (one GPU that torch.distributed's gloo cannot use)."""

from __future__ import annotations

import os

import torch

from ..errors import UserError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def auto_device(processes: int = 1) -> torch.device:
    """cuda if there is a GPU for each process of this machine (``LOCAL_WORLD_SIZE`` under torchrun),
    then mps (one process only), then cpu."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", processes))
    if torch.cuda.is_available() and torch.cuda.device_count() >= local:
        return torch.device("cuda")
    if processes == 1 and mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def valid_device_name(name: str) -> bool:
    """Whether ``name`` is one of :data:`CHOICES` (spelled so; not whether this machine has it)."""
    kind, _, index = name.partition(":")
    return name in ("auto", "cpu", "mps", "cuda") or (kind == "cuda" and index.isdigit())


def resolve_device(name: str, processes: int = 1) -> torch.device:
    """``name`` as a device this machine has; a UserError in one line for one it lacks or does not know."""
    if not valid_device_name(name):
        raise UserError(f"--device must be {CHOICES}; got {name!r}")
    if name == "auto":
        return auto_device(processes)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                        f"numbered from 0")
    if name == "mps" and not mps_available():
        raise UserError("--device mps: Apple's Metal (MPS) is not available on this machine")
    return torch.device(name)
