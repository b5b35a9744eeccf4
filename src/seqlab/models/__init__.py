"""seqlab.models — whole models composed from seqlab.nn blocks."""

from .pretrained import from_pretrained, save_pretrained
from .conv_seq2seq import ConvSeq2Seq
from .seq2seq import Seq2Seq
from .transformer import Transformer

__all__ = ["Transformer", "Seq2Seq", "ConvSeq2Seq", "from_pretrained", "save_pretrained"]
