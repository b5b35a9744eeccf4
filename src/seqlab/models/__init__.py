"""seqlab.models — whole models composed from seqlab.nn blocks."""

from .pretrained import from_pretrained, save_pretrained
from .conv_seq2seq import ConvSeq2Seq
from .generation import generate, stream
from .language_model import TransformerLM
from .recurrent_lm import RecurrentLM
from .seq2seq import Seq2Seq
from .transformer import Transformer

__all__ = ["Transformer", "TransformerLM", "RecurrentLM", "Seq2Seq", "ConvSeq2Seq", "generate", "stream",
           "from_pretrained", "save_pretrained"]
