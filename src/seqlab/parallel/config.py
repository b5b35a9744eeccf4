"""The ``[parallel]`` section of a recipe: how many ranks each mode takes (set with
``--set parallel.tp=2`` and launched by ``torchrun`` or ``seqlab train ... --nproc N``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ParallelConfig:
    dp: int = 0  # data-parallel ranks; 0 = every rank that tensor and pipeline parallel leave
    dp_mode: Literal["ddp", "fsdp"] = "ddp"  # replicas, or parameters/gradients/optimizer sharded (FSDP2)
    tp: int = 1  # tensor-parallel ranks: attention heads and feed-forward width split between them
    pp: int = 1  # pipeline stages: consecutive layers on each
    microbatches: int = 2  # pipeline only: micro-batches each rank's batch is cut into
    schedule: Literal["gpipe", "1f1b"] = "1f1b"  # pipeline only

    def __post_init__(self) -> None:
        if self.dp < 0 or self.tp < 1 or self.pp < 1 or self.microbatches < 1:
            raise ValueError("parallel.tp, parallel.pp and parallel.microbatches must be at least 1, "
                             "parallel.dp at least 0 (0 = the ranks left)")

    def sizes(self, world: int) -> tuple[int, int, int]:
        """(dp, tp, pp) for ``world`` ranks, checked: their product must be the world size, and the
        pipeline does not combine with the other modes here."""
        dp = self.dp or max(world // (self.tp * self.pp), 1)
        if dp * self.tp * self.pp != world:
            raise ValueError(f"parallel.dp × tp × pp = {dp} × {self.tp} × {self.pp} = {dp * self.tp * self.pp}, "
                             f"but {world} processes were started")
        if self.pp > 1 and (dp > 1 or self.tp > 1):
            raise ValueError("parallel.pp does not combine with dp or tp in seqlab yet; use one of them")
        if dp > 1 and self.tp > 1 and self.dp_mode != "fsdp":
            raise ValueError("data parallel with tensor parallel needs parallel.dp_mode='fsdp' (FSDP2 over "
                             "the data-parallel dimension of a 2-D mesh)")
        return dp, self.tp, self.pp

    def data_parallel_only(self, task: str) -> None:
        """Tensor and pipeline parallel split a language model's Transformer by its module names; every
        other task trains data parallel (DDP or FSDP2) only."""
        if self.tp > 1 or self.pp > 1:
            raise ValueError(f"parallel.tp and parallel.pp split a language model; train {task} runs data "
                             f"parallel only (parallel.dp, parallel.dp_mode)")
