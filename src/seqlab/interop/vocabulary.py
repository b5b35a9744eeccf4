"""A foreign vocabulary put in seqlab's order: seqlab's encoder-decoders read ``<pad>``, ``<bos>``,
``<eos>``, ``<unk>`` at ids 0 … 3 (:data:`seqlab.data.tokenizer.SPECIALS`), where a Hugging Face
checkpoint has them anywhere (Marian: ``</s>`` = 0, ``<unk>`` = 1, ``<pad>`` last, and the decoder starts
from ``<pad>``).

Renumbering a vocabulary is exact: the same permutation applied to the tokenizer's ids and to the rows of
every matrix indexed by token (embeddings, output layer, output bias) leaves every logit where its token
is. A role the checkpoint has no token of its own for gets a new row that the output layer never picks
(:data:`NEVER`): the decoder's start when it is the padding or the end token (a copy of that token's row,
so the decoder's first input is what the checkpoint's was; were it the end token's live row, ``<bos>``
would be as likely as ``<eos>`` at every step), and an unknown token a byte-level vocabulary lacks (a copy
of the padding token's). ``<pad>`` is never picked either, as OPUS-MT's ``bad_words_ids`` [[pad]] rules
out in transformers (seqlab's decoding drops it anyway).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokenizers import Tokenizer
from torch import Tensor

from ..data.tokenizer import BOS_ID, PAD_ID, SPECIALS
from ..errors import UserError

NEVER = -1e4  # the output bias of an added row: exp(-1e4) is 0 in fp32 and fp16, and no loss turns it into inf


@dataclass
class Renumbering:
    """``order[new] = old``: the checkpoint's id each seqlab id reads (an added row reads the padding
    token's); ``added``: seqlab ids of rows the checkpoint has no token for, and the names given them."""

    order: list[int]
    added: dict[int, str]

    def rows(self, matrix: Tensor) -> Tensor:
        """A (V, …) tensor indexed by the checkpoint's ids -> (V', …) indexed by seqlab's."""
        return matrix[self.order]

    def bias(self, bias: Tensor) -> Tensor:
        """The output bias in seqlab's order; ``<pad>`` and the added rows never picked."""
        out = bias[self.order].clone()
        out[[PAD_ID, *self.added]] = NEVER
        return out

    def new_id(self) -> dict[int, int]:
        """The checkpoint's id -> seqlab's, for every token it has."""
        return {old: new for new, old in enumerate(self.order) if new not in self.added}


def seqlab_order(size: int, pad: int, start: int | None, eos: int, unk: int | None) -> Renumbering:
    """Ids 0 … 3 read the checkpoint's ``pad``, ``start`` (the decoder's first input), ``eos``, ``unk``;
    the other ids follow in the checkpoint's order. A new row where the checkpoint has no token of the
    role's own: ``start`` None (a copy of ``pad``'s row), ``pad`` or ``eos`` (a copy of that row), ``unk``
    None or one of the others (a copy of ``pad``'s)."""
    if len({pad, eos}) < 2 or not all(0 <= i < size for i in (pad, eos)):
        raise UserError(f"padding ({pad}) and end ({eos}) must be two ids of the {size}-token vocabulary")
    if start is not None and not 0 <= start < size:
        raise UserError(f"the decoder's start ({start}) must be an id of the {size}-token vocabulary")
    unk = None if unk in (pad, eos, start) else unk
    slots = [pad, start, eos, unk]
    added = {new: SPECIALS[new] for new, old in enumerate(slots)
             if old is None or (new == BOS_ID and old in (pad, eos))}
    specials = {old for old in slots if old is not None}
    order = [pad if old is None else old for old in slots] + [i for i in range(size) if i not in specials]
    return Renumbering(order, added)


def renumbered(tokenizer: Tokenizer, new_id: dict[int, int], added: dict[int, str] | None = None,
               keep_post_processor: bool = True) -> Tokenizer:
    """``tokenizer`` with each id ``i`` made ``new_id[i]`` (model vocabulary, added tokens, post-processor's
    special ids) and ``added`` (new id -> name) as new special tokens; no padding or truncation (seqlab
    batches itself); without ``keep_post_processor`` no post-processor either (seqlab adds a target's
    ``<eos>`` itself). A Renumbering gives ``new_id`` and ``added``."""
    state = json.loads(tokenizer.to_str())
    names = dict(added or {})
    taken = set(tokenizer.get_vocab())
    for new, name in names.items():
        while name in taken:  # the checkpoint already spells a token so: a name of our own
            name = f"<{name.strip('<>')}_>"
        names[new] = name
    model = state["model"]
    for token in state.get("added_tokens") or []:
        token["id"] = new_id[token["id"]]
    # added tokens are written into the model's vocabulary too: one the model lacks (a <pad> added on top)
    # would otherwise leave its new id, which may now be among the model's, to no token
    extra = {token["id"]: token["content"] for token in state.get("added_tokens") or []} | names
    if model["type"] in ("WordLevel", "WordPiece", "BPE"):
        vocab = {token: new_id[i] for token, i in model["vocab"].items()}
        model["vocab"] = vocab | {n: i for i, n in extra.items() if n not in vocab}
    elif model["type"] == "Unigram":  # a list: the id is the place
        pieces = model["vocab"]
        lowest = min((score for _, score in pieces), default=0.0)
        placed = {new_id[old]: piece for old, piece in enumerate(pieces)}
        placed |= {i: [n, lowest - 10.0] for i, n in extra.items() if i not in placed}
        if sorted(placed) != list(range(len(placed))):
            raise UserError("a Unigram tokenizer's ids cannot have gaps")
        model["vocab"] = [placed[i] for i in range(len(placed))]
        if model.get("unk_id") is not None:
            model["unk_id"] = new_id[model["unk_id"]]
    else:
        raise UserError(f"a {model['type']} tokenizer cannot be renumbered (seqlab reads WordLevel, WordPiece, "
                        f"BPE and Unigram)")
    state["added_tokens"] = (state.get("added_tokens") or []) + [
        {"id": i, "content": n, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": True} for i, n in names.items()]
    state["post_processor"] = (_renumbered_processor(state.get("post_processor"), new_id) if keep_post_processor
                               else None)
    state["padding"] = state["truncation"] = None
    return Tokenizer.from_str(json.dumps(state))


def _renumbered_processor(processor: dict | None, new_id: dict[int, int]) -> dict | None:
    if processor is None:
        return None
    kind = processor.get("type")
    if kind == "TemplateProcessing":
        for special in processor.get("special_tokens", {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for role in ("sep", "cls"):
            token, i = processor[role]
            processor[role] = [token, new_id[i]]
    elif kind == "Sequence":
        processor["processors"] = [_renumbered_processor(p, new_id) for p in processor["processors"]]
    return processor
