"""seqlab.scratch — recurrent networks and attention in plain NumPy, with hand-written backward passes
(backpropagation through time). The learning path: every function here is proven equal to its PyTorch
twin in ``tests/scratch``. Arrays are batch-first, parameter names and gate orders are torch's."""

from .attention import attention_backward, attention_forward
from .char_lm import train_char_lm
from .loss import softmax_cross_entropy
from .optim import Adam, clip_by_global_norm
from .recurrent import (gru_backward, gru_forward, init_params, lstm_backward, lstm_forward, rnn_backward,
                        rnn_forward)

__all__ = ["attention_forward", "attention_backward", "train_char_lm", "softmax_cross_entropy", "Adam",
           "clip_by_global_norm", "init_params", "rnn_forward", "rnn_backward", "lstm_forward",
           "lstm_backward", "gru_forward", "gru_backward"]
