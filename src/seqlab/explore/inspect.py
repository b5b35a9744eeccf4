"""What the explorer shows, computed from a run: its task's answer to a request (the output and the
attention weights behind it, ``Task.explore``), its positional encoding and its training curves."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..tasks import run_dir as runs
from ..tasks import task as registry
from ..tasks.task import Request


class Inspector:
    """Loads a run once, through its task's registry entry; ``infer`` answers the page's requests."""

    def __init__(self, run: str | Path) -> None:
        self.run = Path(run)
        name = runs.read_run(self.run)["task"]
        if name.startswith("compare-"):
            raise UserError(f"{self.run} compares several models, each a run of its own: "
                            f"seqlab explore {self.run}/MODEL")
        if name not in registry.tasks():
            raise UserError(f"{self.run} is a {name} run, which the explorer cannot show")
        self.task = registry.get(name)
        self.engine = self.task.load(self.run)
        self.model = self.task.explorable(self.engine, self.run)

    def describe(self) -> dict[str, Any]:
        config = asdict(self.model.config)
        return {"task": self.task.name, "model": type(self.model).__name__,
                "max_input_tokens": self.task.input_limit(self.engine),
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "config": {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool)) or v is None}}

    def example(self) -> dict[str, Any]:
        """The input the page opens on, taken from the run's own held-out data (``Task.explore_example``);
        a generic one when that data cannot be read any more (a moved CSV)."""
        try:
            return self.task.explore_example(self.engine, self.run)
        except UserError as error:
            return {"text": "", "source": f"no example: {error}"}
        except (OSError, ValueError) as error:  # a held-out file damaged since training (an empty valid.bin)
            return {"text": "", "source": f"no example: the run's held-out data cannot be read ({error})"}

    def infer(self, text: str, beam: int | None = None, max_new_tokens: int = 40,
              image: bytes | None = None) -> dict[str, Any]:
        """One answer, from one call of the model: nothing is kept between requests, so requests served
        at once cannot mix."""
        return self.task.explore(self.engine, Request(text, beam, max_new_tokens, image))

    def next_tokens(self, text: str, temperature: float, top_k: int, append: int | None = None,
                    ids: list[int] | None = None) -> dict[str, Any]:
        """A language model's next-token distributions (one call of the model, nothing kept)."""
        return self.task.next_tokens(self.engine, text, temperature, top_k, append, ids)

    def positional(self, positions: int = 64) -> dict[str, Any]:
        """The encoding added at each position: the sinusoidal table or the learned vectors (none for
        rotary and relative positions, which act inside attention)."""
        from ..nn import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

        module = next((m for m in self.model.modules()
                       if isinstance(m, (LearnedPositionalEmbedding, SinusoidalPositionalEncoding))), None)
        if module is None:
            return {"kind": "none (rotary, relative or recurrent)", "values": []}
        if isinstance(module, LearnedPositionalEmbedding):
            table, kind = module.embedding.weight[:positions], "learned"
        else:
            table, kind = module.encoding(positions), "sinusoidal"
        return {"kind": kind, "values": [[round(v, 3) for v in row] for row in table.detach().float().tolist()]}

    def curves(self) -> list[dict[str, Any]]:
        from ..io import read_metrics

        return list(read_metrics(self.run))
