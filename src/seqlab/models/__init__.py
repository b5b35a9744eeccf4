"""seqlab.models — whole models composed from seqlab.nn blocks."""

from .pretrained import from_pretrained, save_pretrained
from .transformer import Transformer

__all__ = ["Transformer", "from_pretrained", "save_pretrained"]
