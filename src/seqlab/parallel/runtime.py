"""What the training engine asks of the processes it runs on. ``SingleProcess`` is the plain case;
``Distributed`` is the same engine on ``torchrun``'s ranks: it applies the recipe's parallel modes to
the model from outside, gives each data-parallel rank its slice of the global batch, reduces the
losses, clips the gradient norm over every shard, and saves and loads the training state through
``torch.distributed.checkpoint`` (DCP), so that a run saved on N ranks resumes on M.

The global batch is drawn the same way whatever the rank count, from (seed, step), so a run on two
ranks follows the same trajectory as on one, up to the order of floating-point sums.

One process keeps its training state (weights and optimizer) in safetensors + JSON, which loading
never unpickles. DCP writes its ``.metadata`` file with pickle and reads it with ``pickle.load``, so
resuming a run saved on several ranks trusts that file: resume only runs from a trusted source."""

from __future__ import annotations

import contextlib
import datetime
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import UserError
from ..train import checkpoint
from .config import ParallelConfig

OutputLoss = Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> mean loss


def next_token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of logits (B, T, V) against the next tokens (B, T): a language model's loss,
    and what the last pipeline stage (a TransformerLM's output layer) hands the schedule."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def torchrun_world() -> int:
    """The number of processes torchrun started (1 when it did not)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_by_torchrun() -> bool:
    return torchrun_world() > 1


def _state_dict_options(**kwargs):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # Optimizer state keyed by parameter name ("state.layers.0.ff.linear1.weight.exp_avg"), not by
    # position, so that it reshards across pipeline stages and data-parallel shards.
    return StateDictOptions(flatten_optimizer_state_dict=True, **kwargs)


@contextlib.contextmanager
def _one_process_is_fine():
    """DCP warns when it runs without a process group; for one process that is the intent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


class SingleProcess:
    """One process: the model trains as it is."""

    rank, world, is_main = 0, 1, True

    def apply(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """-> (the module a training step calls, the module whose parameters the optimizer updates)."""
        return model, model

    def local_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return batch

    def forward_backward(self, train_model: nn.Module, loss_fn, batch: dict[str, Tensor],
                         scale: float) -> tuple[Tensor, int]:
        loss, n = loss_fn(train_model, batch)
        (loss * scale).backward()
        return loss.detach(), n

    def reduce(self, loss_sum: float, tokens: int) -> tuple[float, int]:
        return loss_sum, tokens

    def clip_grad_norm(self, module: nn.Module, max_norm: float) -> None:
        nn.utils.clip_grad_norm_(module.parameters(), max_norm, foreach=True)

    def before_eval(self, model: nn.Module) -> None:
        pass

    def export(self, model: nn.Module) -> nn.Module | None:
        """The whole model as a plain module on the main rank (None elsewhere), for ``save_pretrained``.
        Called right after :meth:`before_eval` (the Trainer saves only after an evaluation)."""
        return model

    def load_weights(self, model: nn.Module, path: Path) -> None:
        from safetensors.torch import load_model

        load_model(model, str(path), device=str(next(model.parameters()).device))

    def agree(self, value: Any) -> Any:
        """The main rank's ``value`` on every rank (so that every rank takes the same decisions)."""
        return value

    def save_training_state(self, module: nn.Module, optimizer, directory: Path) -> None:
        """Weights and optimizer state, keyed by parameter name, into ``directory``'s
        ``training_state.safetensors`` + ``training_state.json``: no pickle, on saving or loading."""
        from torch.distributed.checkpoint.state_dict import get_state_dict

        fresh = not optimizer.state
        model_state, optimizer_state = get_state_dict(module, optimizer, options=_state_dict_options())
        checkpoint.save_state(directory, {"model": model_state, "optimizer": optimizer_state},
                              checkpoint.TRAINING_STATE)
        if fresh:  # get_state_dict initialised the state with a zero-rate step, counted in Adam's step: undo
            optimizer.state.clear()

    def load_training_state(self, module: nn.Module, optimizer, directory: Path) -> None:
        """From whichever form ``directory`` holds: one process's safetensors + JSON, or the DCP
        directory of a run on several ranks (whose pickled metadata DCP unpickles)."""
        from torch.distributed.checkpoint.state_dict import set_state_dict

        options = _state_dict_options()
        if checkpoint.has_sharded_training_state(directory):
            state = self._load_sharded(module, optimizer, directory / checkpoint.TRAINING_STATE, options)
        else:
            state = checkpoint.load_state(directory, checkpoint.TRAINING_STATE)
        set_state_dict(module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                       options=options)

    def _load_sharded(self, module: nn.Module, optimizer, path: Path, options) -> dict[str, Any]:
        """DCP fills a state dict of this process's layout (templates from ``get_state_dict``)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optimizer_state = get_state_dict(module, optimizer, options=options)
        state = {"model": model_state, "optimizer": optimizer_state}
        with _one_process_is_fine():
            dcp.load(state, checkpoint_id=str(path))
        return state

    def barrier(self) -> None:
        pass

    def on_main(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` on the main rank only; its result (or its UserError) reaches every rank."""
        return work()

    def close(self, wait: bool = True) -> None:
        pass


class Distributed(SingleProcess):
    """This process's part of a ``torchrun`` job, laid out on a device mesh (pp, dp, tp)."""

    def __init__(self, config: ParallelConfig, device: torch.device,
                 output_loss: OutputLoss = next_token_loss) -> None:
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
        if device.type == "cuda":  # one GPU a process: the one torchrun's LOCAL_RANK names
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.config, self.device, self.output_loss = config, device, output_loss
        try:
            self.dp, self.tp, self.pp = config.sizes(self.world)
        except ValueError as error:
            raise UserError(str(error)) from None
        from torch.distributed.device_mesh import init_device_mesh

        dims = [(name, size) for name, size in (("pp", self.pp), ("dp", self.dp), ("tp", self.tp)) if size > 1]
        self.mesh = init_device_mesh(device.type, tuple(s for _, s in dims), mesh_dim_names=tuple(n for n, _ in dims))
        self.coordinate = {name: self.mesh[name].get_local_rank() for name, _ in dims}
        self.scale, self.empty_share = 1.0, False

    def _rank_in(self, name: str) -> int:
        return self.coordinate.get(name, 0)

    # --- applying the modes --------------------------------------------------------------------

    def apply(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        from .apply import data_parallel, lm_pipeline_stage, pipeline_schedule, tensor_parallel
        from .plans import LM_TENSOR_PLAN

        self.model_class = type(model)  # before FSDP2 swaps in its own subclass
        with torch.no_grad():  # one set of initial weights, whatever each rank's random state was
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)
        if self.dp > 1:  # batch norm's statistics over the whole batch, as on one process
            from .batch_norm import whole_batch_norm

            whole_batch_norm(model, group=self.mesh["dp"].get_group(), counted=lambda: not self.empty_share)
        self.sharded = self.tp > 1 or (self.dp > 1 and self.config.dp_mode == "fsdp")
        try:
            if self.pp > 1:
                stage_index = self._rank_in("pp")
                self.stage = lm_pipeline_stage(model, stage_index, self.pp)
                self._owners()

                def scaled_loss(output: Tensor, target: Tensor) -> Tensor:
                    return self.output_loss(output, target) * self.scale

                self.schedule = pipeline_schedule(self.stage, stage_index, self.pp, self.config.microbatches,
                                                  scaled_loss, self.config.schedule, self.device)
                return self.stage, self.stage
            if self.tp > 1:
                model = tensor_parallel(model, self.mesh["tp"], LM_TENSOR_PLAN)
            if self.dp > 1 and self.config.dp_mode == "fsdp":
                return data_parallel(model, "fsdp", self.mesh["dp"]), model
            if self.dp > 1:
                return data_parallel(model, "ddp"), model
            return model, model
        except (ValueError, AttributeError) as error:
            raise UserError(f"cannot apply parallel modes to this model: {error}") from None

    def _owners(self) -> None:
        """Which pipeline stage owns each entry of the whole model's state dict."""
        mine = list(self.stage.state_dict())
        every: list[list[str]] = [[] for _ in range(self.world)]
        dist.all_gather_object(every, mine)
        self.owner = {name: stage for stage, names in enumerate(every) for name in names}

    # --- a training step -----------------------------------------------------------------------

    def local_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """This data-parallel rank's rows of the global batch (tensor-parallel ranks share them). A
        batch that does not split evenly (an epoch's last) gives the last ranks one row more; a rank
        left with no row runs the first row at weight 0, because every rank must run backward."""
        self.empty_share = False
        if self.dp == 1:
            return batch
        rows = next(iter(batch.values())).size(0)
        rank = self._rank_in("dp")
        start, end = rank * rows // self.dp, (rank + 1) * rows // self.dp
        if start == end:
            self.empty_share, start, end = True, 0, 1
        return {k: v[start:end] for k, v in batch.items()}

    def forward_backward(self, train_model: nn.Module, loss_fn, batch: dict[str, Tensor],
                         scale: float) -> tuple[Tensor, int]:
        if self.pp == 1:
            loss, n = loss_fn(train_model, batch)
            if self.empty_share:
                n = 0
            weight = 1.0
            if self.dp > 1:
                # Data parallel averages the ranks' gradients; each rank's loss is a mean over its own
                # n tokens (or rows), so weight it by n / (the ranks' mean n): the gradient is then the
                # one-process gradient of the mean over the whole batch. 1.0 exactly when the shares are equal.
                total = torch.tensor([n], dtype=torch.float64)
                dist.all_reduce(total, group=self.mesh["dp"].get_group())
                weight = n * self.dp / total.item()
            (loss * (scale * weight)).backward()
            return loss.detach(), n
        self.scale = scale
        stage, last = self._rank_in("pp"), self.pp - 1
        losses: list[Tensor] = []
        if stage == 0:
            self.schedule.step(batch["x"])
        elif stage == last:
            self.schedule.step(target=batch["y"], losses=losses)
        else:
            self.schedule.step()
        # The schedule averaged the micro-batches' gradients; their mean loss is the batch's.
        loss = torch.stack(losses).mean().detach() / scale if losses else torch.zeros(())
        return loss, batch["y"].numel()

    def reduce(self, loss_sum: float, tokens: int) -> tuple[float, int]:
        """Sums over the data-parallel ranks; tensor-parallel twins and earlier pipeline stages add 0."""
        counts = self._rank_in("tp") == 0 and self._rank_in("pp") == self.pp - 1
        totals = torch.tensor([loss_sum, tokens] if counts else [0.0, 0.0], dtype=torch.float64)
        dist.all_reduce(totals)
        return totals[0].item(), int(totals[1].item())

    def clip_grad_norm(self, module: nn.Module, max_norm: float) -> None:
        """The global gradient norm over every shard and stage, then one scale for all gradients."""
        from torch.distributed.tensor import DTensor

        grads = [p.grad for p in module.parameters() if p.grad is not None]
        by_mesh: dict[Any, list[Tensor]] = {}
        for g in grads:  # DTensors on one mesh reduce together; FSDP × TP mixes a 1-D and a 2-D mesh
            by_mesh.setdefault(g.device_mesh if isinstance(g, DTensor) else None, []).append(g)
        squares = torch.zeros((), dtype=torch.float64)
        for group in by_mesh.values():
            norm = nn.utils.get_total_norm(group, foreach=True)
            if isinstance(norm, DTensor):
                norm = norm.full_tensor()
            squares = squares + norm.double().cpu() ** 2
        if self.pp > 1:  # each stage holds different parameters
            dist.all_reduce(squares)
        coefficient = max_norm / (squares.sqrt().item() + 1e-6)
        if coefficient < 1.0:
            for group in by_mesh.values():  # foreach kernels take DTensors or plain tensors, not both
                torch._foreach_mul_(group, coefficient)

    # --- evaluation and checkpoints --------------------------------------------------------------

    def before_eval(self, model: nn.Module) -> None:
        """Pipeline: every rank gets the whole model's current weights, so that any rank can evaluate
        it (and the main rank save it) as one plain module."""
        if self.pp > 1:
            with torch.no_grad():
                for name, tensor in model.state_dict().items():
                    dist.broadcast(tensor, src=self.owner[name])

    def export(self, model: nn.Module) -> nn.Module | None:
        if self.pp > 1:  # before_eval has just brought every stage's weights to every rank
            return model if self.is_main else None
        if not self.sharded:
            return model
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        full = get_model_state_dict(model, options=_state_dict_options(full_state_dict=True, cpu_offload=True))
        if not self.is_main:
            return None
        plain = self.model_class(model.config)
        plain.load_state_dict(full, strict=False)  # a tied output layer comes back with the embedding
        return plain

    def load_weights(self, model: nn.Module, path: Path) -> None:
        if not self.sharded:
            return super().load_weights(model, path)
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(model, load_file(str(path)), options=_state_dict_options(full_state_dict=True,
                                                                                       strict=False))

    def load_training_state(self, module: nn.Module, optimizer, directory: Path) -> None:
        """A DCP directory reshards itself on load; one process's whole state (safetensors + JSON) is
        read by every rank, which keeps its part of each entry of this layout's state dict: its
        pipeline stage's entries, its FSDP/TP shards (cut from rank 0's copy)."""
        if checkpoint.has_sharded_training_state(directory):
            return super().load_training_state(module, optimizer, directory)
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
        from torch.distributed.tensor import DTensor, distribute_tensor

        whole = checkpoint.load_state(directory, checkpoint.TRAINING_STATE)
        options = _state_dict_options()
        layout = dict(zip(("model", "optimizer"), get_state_dict(module, optimizer, options=options)))
        for part, entries in layout.items():
            for key, mine in entries.items():
                value = whole[part][key]
                if isinstance(mine, DTensor):
                    value = distribute_tensor(value.to(mine.device), mine.device_mesh, mine.placements)
                entries[key] = value
        set_state_dict(module, optimizer, model_state_dict=layout["model"], optim_state_dict=layout["optimizer"],
                       options=options)

    def save_training_state(self, module: nn.Module, optimizer, directory: Path) -> None:
        """Through DCP, as the ranks hold it (FSDP/TP shards, pipeline stages), so that any layout
        can load it. DCP pickles its ``.metadata``: see the module's docstring."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        fresh = not optimizer.state
        model_state, optimizer_state = get_state_dict(module, optimizer, options=_state_dict_options())
        dcp.save({"model": model_state, "optimizer": optimizer_state},
                 checkpoint_id=str(directory / checkpoint.TRAINING_STATE))
        if fresh:
            optimizer.state.clear()

    def agree(self, value: Any) -> Any:
        shared = [value]
        dist.broadcast_object_list(shared, src=0)
        return shared[0]

    def barrier(self) -> None:
        dist.barrier()

    def on_main(self, work: Callable[[], Any]) -> Any:
        outcome: list[Any] = [None]
        if self.is_main:
            try:
                outcome = [("ok", work())]
            except UserError as error:
                outcome = [("error", str(error))]
        dist.broadcast_object_list(outcome, src=0)
        kind, value = outcome[0]
        if kind == "error":
            raise UserError(value)
        return value

    def close(self, wait: bool = True) -> None:
        """Leave the job: after a run that finished, once every rank is here (``wait``); after a failure,
        at once. A rank that failed must not wait: the others may be inside a collective it never
        enters, and its barrier would hang the job until the timeout. Exiting lets torchrun stop them."""
        if dist.is_initialized():
            if wait:
                dist.barrier()
            dist.destroy_process_group()


def check_layout(config: ParallelConfig, world: int, batch_size: int) -> None:
    """A UserError unless the [parallel] layout fits ``world`` processes and a batch of ``batch_size``
    rows splits evenly over the data-parallel ranks (and, under a pipeline, into its micro-batches)."""
    try:
        dp, _, pp = config.sizes(world)
    except ValueError as error:
        raise UserError(str(error)) from None
    per_rank = batch_size // dp
    if batch_size % dp or (pp > 1 and per_rank % config.microbatches):
        raise UserError(f"train.batch_size ({batch_size}) must split evenly over {dp} data-parallel "
                        f"rank(s)" + (f" and {config.microbatches} micro-batches" if pp > 1 else ""))


def runtime_for_config(config, output_loss: OutputLoss = next_token_loss) -> SingleProcess:
    """This process's place in the job, for a task's config (its ``parallel`` section, ``train.device``
    and ``check_layout(world)``): this rank's part of a torchrun job, or one process. Every task's
    training starts here. ``output_loss``: what a pipeline's last stage computes (language models)."""
    from ..train.device import resolve_device

    if launched_by_torchrun():
        config.check_layout(torchrun_world())
    device = resolve_device(config.train.device, torchrun_world() if launched_by_torchrun() else 1)
    return runtime_for(config.parallel, device, output_loss)


def runtime_for(config: ParallelConfig, device: torch.device,
                output_loss: OutputLoss = next_token_loss) -> SingleProcess:
    """``Distributed`` under torchrun with more than one process, else ``SingleProcess``."""
    if launched_by_torchrun():
        return Distributed(config, device, output_loss)
    wanted = max(config.dp, 1) * config.tp * config.pp
    if wanted > 1:
        raise UserError(f"the [parallel] section asks for {wanted} processes; add --nproc {wanted} "
                        f"(or start the command with torchrun --nproc_per_node {wanted})")
    return SingleProcess()
