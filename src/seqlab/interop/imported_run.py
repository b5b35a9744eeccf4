"""A Hugging Face checkpoint's weights, read without unpickling anything (``read_weights``), and a seqlab
run directory made from a model and a tokenizer that came from elsewhere, laid out by the same writers
training uses, so that ``generate``, ``eval``, ``explore`` and
``--init`` read it as they read a trained run:

    RUN/run.json                   the task and its full config (as ``seqlab train`` writes it)
    RUN/tokenizer.json             the tokenizer (Hugging Face ``tokenizers`` JSON)
    RUN/checkpoints/best/          the model (``save_pretrained``) and a state naming where it came from
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import Tensor, nn

from ..config import to_dict
from ..data.tokenizer import BOS, EOS, PAD, UNK, save_tokenizer
from ..errors import DamagedFileError, UserError
from ..io import write_json
from ..tasks import run_dir as runs
from ..train.checkpoint import save_checkpoint

# Special-token roles -> the tokens that play them, in order of preference: seqlab's own, BERT's
# WordPiece ones, and GPT-2's one <|endoftext|> (its beginning and end of text both, so that a GPT-2
# imported and exported again keeps its specials).
ENDOFTEXT = "<|endoftext|>"
SPECIAL_ROLES = {"pad": (PAD, "[PAD]"), "bos": (BOS, ENDOFTEXT), "eos": (EOS, ENDOFTEXT), "unk": (UNK, "[UNK]"),
                 "cls": ("[CLS]",), "sep": ("[SEP]",), "mask": ("[MASK]",)}


def special_tokens(tokenizer: Tokenizer) -> dict[str, str]:
    """Each role of :data:`SPECIAL_ROLES` that a token of ``tokenizer`` plays, and that token."""
    found = {role: next((t for t in tokens if tokenizer.token_to_id(t) is not None), None)
             for role, tokens in SPECIAL_ROLES.items()}
    return {role: token for role, token in found.items() if token is not None}


def write_imported_run(run: Path, task: str, config: Any, model: nn.Module, tokenizer: Tokenizer,
                       source: str) -> None:
    """Writes ``run`` (an existing, empty directory) as a ``task`` run whose best checkpoint is ``model``:
    ``config`` is the task's config dataclass, ``source`` says where the weights came from. The checkpoint
    holds no optimizer state: the run can be used, or started from with ``--init``, not resumed."""
    runs.write_run(run, task, to_dict(config))
    save_tokenizer(tokenizer, run / "tokenizer.json")
    save_checkpoint(run / "checkpoints" / "best", model, {"imported_from": source})


def imported_from(run: Path) -> str | None:
    """Where an imported run's weights came from (its best checkpoint's state says, as
    :func:`write_imported_run` wrote it); None for a run seqlab trained or whose state cannot be read."""
    try:
        tree = json.loads((Path(run) / "checkpoints" / "best" / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = tree.get("imported_from") if isinstance(tree, dict) else None
    return source if isinstance(source, str) else None


def read_checkpoint_tokenizer(path: Path) -> Tokenizer:
    """A checkpoint's tokenizers JSON; one that the tokenizers library cannot read is a UserError naming it."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the tokenizers library raises a bare Exception for every parse error
        said = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"{path} is not a tokenizers JSON file ({said}); save the checkpoint's tokenizer "
                        f"again (a fast tokenizer's save_pretrained writes it)") from None


def read_weights(source: Path) -> dict[str, Tensor]:
    """model.safetensors, or the shards that model.safetensors.index.json names. Pickled weights
    (pytorch_model.bin) are refused: loading a pickle can run any code it carries."""
    index = source / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise DamagedFileError(index, "no weight_map", "it is not a safetensors index") from None
        if not all(isinstance(name, str) and Path(name).name == name for name in files):
            raise DamagedFileError(index, "a shard outside the directory", "it is not a safetensors index")
    elif (source / "model.safetensors").is_file():
        files = ["model.safetensors"]
    elif any((source / name).exists() for name in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        raise UserError(f"{source} holds its weights as pytorch_model.bin, a pickle (loading one can run code); "
                        f"seqlab reads model.safetensors: resave it with save_pretrained(DIR, safe_serialization=True)")
    else:
        raise UserError(f"{source} has no model.safetensors")
    tensors: dict[str, Tensor] = {}
    for name in files:
        try:
            read = load_file(str(source / name))
        except (SafetensorError, OSError, ValueError) as error:
            raise DamagedFileError(source / name, str(error), "it cannot be read as safetensors") from None
        if bad := next((key for key, t in read.items() if t.is_floating_point() and not t.isfinite().all()), None):
            raise UserError(f"{source / name}: {bad} holds NaN or infinite values; a model with them computes "
                            f"nothing usable")
        tensors.update(read)
    return tensors


def write_hf_tokenizer(tokenizer: Tokenizer, out: Path, max_length: int, specials: dict[str, str],
                       **settings: Any) -> None:
    """tokenizer.json as it is, and the tokenizer_config.json (with ``specials``, role -> token, and any
    other ``settings``) and special_tokens_map.json that make ``AutoTokenizer`` read it as a
    ``PreTrainedTokenizerFast`` with those special tokens."""
    tokenizer.save(str(out / "tokenizer.json"))
    write_json(out / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
                                               "clean_up_tokenization_spaces": False, **specials, **settings}, indent=2)
    write_json(out / "special_tokens_map.json", specials, indent=2)
