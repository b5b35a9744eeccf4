"""seqlab.models — whole models composed from seqlab.nn blocks.

Importing this package imports every ``nn.Module`` model class, so that ``from_pretrained`` can rebuild
any saved model from the class name in its ``config.json``.
"""

from .pretrained import MODEL_CLASSES, from_pretrained, save_pretrained
from .centernet import CenterNet, CenterNetConfig
from .classifiers import (ConvClassifier, ConvClassifierConfig, LSTMClassifier, LSTMClassifierConfig,
                          TransformerClassifier, TransformerClassifierConfig)
from .conv_seq2seq import ConvSeq2Seq, ConvSeq2SeqConfig
from .covariate_forecaster import CovariateForecaster, CovariateForecasterConfig
from .detr import DETR, DETRConfig
from .forecasters import (ConvForecaster, ConvForecasterConfig, ForecastEnsemble, ForecastEnsembleConfig,
                          LinearForecaster, LinearForecasterConfig, PatchTransformer, PatchTransformerConfig,
                          PeriodicLinearForecaster, PeriodicLinearForecasterConfig, RecurrentForecaster,
                          RecurrentForecasterConfig, TimeStepTransformer, TimeStepTransformerConfig)
from .generation import generate, stream
from .language_model import TransformerLM, TransformerLMConfig
from .masked_lm import MaskedLM, MaskedLMConfig
from .recurrent_lm import RecurrentLM, RecurrentLMConfig
from .seq2seq import Seq2Seq, Seq2SeqConfig
from .transformer import Transformer, TransformerConfig
from .vit import VisionTransformer, VisionTransformerConfig

__all__ = ["Transformer", "TransformerConfig", "TransformerLM", "TransformerLMConfig", "MaskedLM",
           "MaskedLMConfig", "RecurrentLM", "RecurrentLMConfig", "Seq2Seq", "Seq2SeqConfig", "ConvSeq2Seq",
           "ConvSeq2SeqConfig", "TimeStepTransformer", "TimeStepTransformerConfig", "PatchTransformer", "PatchTransformerConfig",
           "RecurrentForecaster", "RecurrentForecasterConfig", "ConvForecaster", "ConvForecasterConfig",
           "ForecastEnsemble", "ForecastEnsembleConfig",
           "LinearForecaster", "LinearForecasterConfig", "PeriodicLinearForecaster",
           "PeriodicLinearForecasterConfig", "CovariateForecaster", "CovariateForecasterConfig",
           "TransformerClassifier", "TransformerClassifierConfig",
           "LSTMClassifier", "LSTMClassifierConfig", "ConvClassifier", "ConvClassifierConfig",
           "VisionTransformer", "VisionTransformerConfig", "DETR", "DETRConfig", "CenterNet", "CenterNetConfig", "LinearTextClassifier", "generate", "stream",
           "from_pretrained", "save_pretrained", "MODEL_CLASSES"]


def __getattr__(name: str):
    # LinearTextClassifier is saved in files of its own (linear_model.json), not through MODEL_CLASSES,
    # and needs scikit-learn, whose import takes seconds: it is imported when first asked for.
    if name == "LinearTextClassifier":
        from .linear_text import LinearTextClassifier

        return LinearTextClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
