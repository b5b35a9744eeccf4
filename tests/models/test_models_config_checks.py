"""What the configs of MaskedLM, RecurrentForecaster and CovariateForecaster build, and their input
checks; detr's inverse_sigmoid against log(p / (1 - p)) written out."""

import math

import pytest
import torch
from torch import nn

from seqlab.models.covariate_forecaster import CovariateForecasterConfig
from seqlab.models.detr import inverse_sigmoid
from seqlab.models.forecasters import RecurrentForecaster, RecurrentForecasterConfig
from seqlab.models.masked_lm import MaskedLM, MaskedLMConfig
from seqlab.nn import GRU, LSTM


def test_inverse_sigmoid_is_the_logit_clamped_to_eps():
    p = torch.tensor([0.0, 1e-7, 0.25, 0.5, 0.9, 1.0], dtype=torch.float64)
    eps = 1e-5
    expected = [math.log(eps / (1 - eps)), math.log(eps / (1 - eps)), math.log(0.25 / 0.75), 0.0,
                math.log(0.9 / 0.1), math.log((1 - eps) / eps)]
    torch.testing.assert_close(inverse_sigmoid(p), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("cell,kind", [("lstm", LSTM), ("gru", GRU)])
def test_recurrent_forecaster_builds_its_cell(cell, kind):
    model = RecurrentForecaster(RecurrentForecasterConfig(channels=3, input_len=8, horizon=2, d_model=6,
                                                          n_layers=3, cell=cell, dropout=0.3))
    assert type(model.rnn) is kind
    assert (model.rnn.input_size, model.rnn.hidden_size, model.rnn.num_layers) == (3, 6, 3)
    assert model.rnn.dropout == 0.3


def test_recurrent_forecaster_cell_error():
    with pytest.raises(ValueError, match=r"^cell must be 'lstm' or 'gru'; got 'rnn'$"):
        RecurrentForecasterConfig(channels=1, input_len=4, horizon=1, cell="rnn")


def test_covariate_forecaster_needs_a_covariate():
    with pytest.raises(ValueError, match=r"^a CovariateForecaster needs at least one covariate "
                                         r"\(past \+ future >= 1\)$"):
        CovariateForecasterConfig(channels=1, input_len=4, horizon=1)
    assert CovariateForecasterConfig(channels=1, input_len=4, horizon=1, future=1).future == 1
    assert CovariateForecasterConfig(channels=1, input_len=4, horizon=1, past=1).past == 1


def mlm(**kw):
    base = dict(vocab_size=13, d_model=8, n_heads=2, n_layers=2, max_len=6, dropout=0.25)
    base.update(kw)
    return MaskedLM(MaskedLMConfig(**base))


def test_masked_lm_d_ff_defaults_to_four_times_d_model():
    assert mlm().config.d_ff == 32
    assert mlm().layers[0].ff.linear1.out_features == 32


@pytest.mark.parametrize("norm_first", [True, False])
def test_masked_lm_norms_and_dropouts(norm_first):
    model = mlm(norm_first=norm_first, attention_dropout=0.125, ff_dropout=0.375)
    assert isinstance(model.embedding_norm, nn.LayerNorm) is not norm_first
    assert isinstance(model.norm, nn.LayerNorm) is norm_first
    for layer in model.layers:
        assert layer.norm_first is norm_first
        assert layer.dropout.p == 0.25 and layer.self_attn.dropout == 0.125 and layer.ff.dropout.p == 0.375


def test_masked_lm_linear_biases_start_at_zero():
    torch.manual_seed(0)
    model = mlm()
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0


def test_masked_lm_encode_length_check():
    model = mlm().eval()
    assert model.encode(torch.ones(1, 6, dtype=torch.long)).shape == (1, 6, 8)  # exactly max_len fits
    with pytest.raises(ValueError, match=r"^sequence of length 7 is longer than max_len=6$"):
        model.encode(torch.ones(1, 7, dtype=torch.long))


def test_masked_lm_padding_is_never_attended():
    torch.manual_seed(0)
    model = mlm().eval()
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    short = model.encode(ids[:1, :3])
    long = model.encode(ids)
    torch.testing.assert_close(long[0, :3], short[0])
    hidden, maps = model.encode(ids, need_weights=True)
    assert torch.all(maps[0][0, :, :, 3:] == 0)


def test_masked_lm_all_padding_row_attends_to_nothing():
    model = mlm().eval()
    _, maps = model.encode(torch.zeros(1, 3, dtype=torch.long), need_weights=True)
    assert all(torch.all(weights == 0) for weights in maps)
