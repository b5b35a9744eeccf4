"""seqlab.nn — the building blocks of "Attention Is All You Need", written to read like the paper."""

from .attention import KVCache, MultiHeadAttention, StaticKVCache, recording_scores, scaled_dot_product_attention
from .feedforward import PositionwiseFeedForward
from .layers import Decoder, DecoderLayer, Encoder, EncoderLayer, decoder_layer, encoder_layer
from .masks import causal_mask, padding_mask
from .relative import RelativePositions, relative_positions
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, init_recurrent
from .positional import (LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding,
                         sinusoidal_table)

__all__ = [
    "KVCache", "MultiHeadAttention", "StaticKVCache", "recording_scores", "scaled_dot_product_attention", "PositionwiseFeedForward",
    "Decoder", "DecoderLayer", "Encoder", "EncoderLayer", "encoder_layer", "decoder_layer", "causal_mask",
    "padding_mask",
    "LearnedPositionalEmbedding", "RotaryEmbedding", "SinusoidalPositionalEncoding", "sinusoidal_table",
    "RelativePositions",
    "relative_positions",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "init_recurrent",
]
