"""The text classifiers against references written here: Kim's (2014) CNN window by window, a BiLSTM
through torch's own nn.LSTM one text at a time; loading word vectors and a pre-trained body, freezing."""

import pytest
import torch
from torch import nn

from seqlab.models import classifiers as c
from seqlab.models.masked_lm import MaskedLM, MaskedLMConfig

PAD = 3  # not 0: padding is whatever pad_id says


def randomised(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
        model.embedding.weight[model.pad_id].zero_()
    return model.eval()


def texts(model, ids):
    """Each row's real tokens' embeddings (L, D)."""
    return [model.embedding.weight[row[row != PAD]] for row in ids]


def kim_reference(model, ids):
    """Per text: each filter of width w over its windows (the text padded with the pad vector to w if
    shorter), ReLU, max over the windows; the maxima side by side, then the head."""
    pad = model.embedding.weight[PAD]
    logits = []
    for x in texts(model, ids):
        features = []
        for conv in model.convs:
            w = conv.kernel_size[0]
            if len(x) < w:
                x_w = torch.cat([x, pad.expand(w - len(x), -1)])
            else:
                x_w = x
            windows = torch.stack([x_w[s:s + w] for s in range(len(x_w) - w + 1)])  # (S, w, D)
            h = torch.einsum("swd,fdw->sf", windows, conv.weight) + conv.bias  # (S, n_filters)
            features.append(h.clamp(min=0).amax(0))
        logits.append(torch.cat(features) @ model.head.weight.T + model.head.bias)
    return torch.stack(logits)


def test_conv_classifier_equals_kims_network_text_by_text():
    torch.manual_seed(0)
    model = randomised(c.ConvClassifier(c.ConvClassifierConfig(30, 4, d_model=6, widths=(2, 4), n_filters=8,
                                                               pad_id=PAD)))
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, PAD, PAD, PAD], [14, PAD, PAD, PAD, PAD, PAD],
                        [0, 1, 2, 4, 5, PAD]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), kim_reference(model, ids), rtol=1e-5, atol=1e-5)
        short = torch.tensor([[5, 6, 7], [8, PAD, PAD]])  # shorter than the widest filter: padded with pad_id
        torch.testing.assert_close(model(short), kim_reference(model, short), rtol=1e-5, atol=1e-5)


def lstm_reference(model, ids, layers):
    """Per text: torch's bidirectional nn.LSTM over its real tokens only (an empty text: over the pad
    token), max over time, the head."""
    lstm = nn.LSTM(model.embedding.embedding_dim, model.lstm.hidden_size, layers, bidirectional=True,
                   batch_first=True)
    lstm.load_state_dict(model.lstm.state_dict())  # the same names and shapes as torch's
    logits = []
    for x in texts(model, ids):
        x = x if len(x) else model.embedding.weight[[PAD]]
        out, _ = lstm(x[None])  # (1, L, 2·hidden)
        logits.append(out[0].amax(0) @ model.head.weight.T + model.head.bias)
    return torch.stack(logits)


def test_lstm_classifier_equals_torchs_lstm_text_by_text():
    torch.manual_seed(0)
    model = randomised(c.LSTMClassifier(c.LSTMClassifierConfig(30, 4, d_model=6, hidden_size=5, n_layers=2,
                                                               dropout=0.3, pad_id=PAD)))
    assert model.lstm.num_layers == 2 and model.lstm.dropout == 0.3  # dropout between the two layers
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, PAD, PAD, PAD], [12, PAD, PAD, PAD, PAD], [PAD] * 5])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), lstm_reference(model, ids, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: c.TransformerClassifier(c.TransformerClassifierConfig(30, 3, d_model=8, n_heads=2, n_layers=1, d_ff=16,
                                                                  pad_id=PAD)),
    lambda: c.LSTMClassifier(c.LSTMClassifierConfig(30, 3, d_model=8, hidden_size=4, pad_id=PAD)),
    lambda: c.ConvClassifier(c.ConvClassifierConfig(30, 3, d_model=8, n_filters=4, pad_id=PAD)),
])
def test_the_pad_tokens_vector_is_zero_and_never_trained(make):
    embedding = make().embedding
    assert embedding.padding_idx == PAD
    assert (embedding.weight[PAD] == 0).all()
    assert (embedding.weight[torch.arange(30) != PAD] != 0).all()


def test_classifiers_run_on_the_inputs_device():
    # The meta device holds shapes only: a position index made on the CPU could not meet its tensors.
    ids = torch.randint(1, 30, (2, 7), device="meta")
    conv = c.ConvClassifier(c.ConvClassifierConfig(30, 3, d_model=8, n_filters=4)).to("meta").eval()
    lstm = c.LSTMClassifier(c.LSTMClassifierConfig(30, 3, d_model=8, hidden_size=4)).to("meta").eval()
    lstm.lstm.fused = False  # the fused kernel's packing needs the lengths on the CPU
    assert conv(ids).shape == lstm(ids).shape == (2, 3)
    assert conv(ids).device.type == lstm(ids).device.type == "meta"


def test_masked_mean_keeps_the_inputs_dtype():
    x = torch.tensor([[[1.0], [2.0], [9.0]]], dtype=torch.bfloat16)
    mean = c.masked_mean(x, torch.tensor([[True, True, False]]))
    assert mean.dtype == torch.bfloat16 and mean.item() == 1.5


def test_load_vectors_copies_the_known_rows_only():
    torch.manual_seed(0)
    model = c.ConvClassifier(c.ConvClassifierConfig(5, 2, d_model=3, widths=(2,), n_filters=2))
    start = model.embedding.weight.detach().clone()
    vectors = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0], [-1.0, 1.0, -1.0]],
                           dtype=torch.float64)  # a word without a vector is all zeros
    model.load_vectors(vectors, freeze=False)
    weight = model.embedding.weight.detach()
    assert weight.dtype == torch.float32
    for row in (1, 3, 4):
        assert weight[row].tolist() == vectors[row].float().tolist()
    for row in (0, 2):
        assert torch.equal(weight[row], start[row])
    assert model.embedding.weight.requires_grad
    with pytest.raises(ValueError, match=r"word vectors are \(4, 3\); the embedding is \(5, 3\)"):
        model.load_vectors(vectors[:4], freeze=True)


def transformer_classifier(**settings):
    return c.TransformerClassifier(c.TransformerClassifierConfig(30, 3, d_model=8, n_heads=2, n_layers=2, d_ff=16,
                                                                 max_len=10, **settings))


def test_body_parameters_are_all_but_the_cls_vector_pooler_and_head():
    model = transformer_classifier(pool="cls", pooler=True)
    body = {id(p) for p in model.body_parameters()}
    outside = {"cls", "pooler.0.weight", "pooler.0.bias", "head.weight", "head.bias"}
    assert body == {id(p) for name, p in model.named_parameters() if name not in outside}
    assert len(body) == len(list(model.parameters())) - len(outside)


def test_a_masked_lms_encoder_loads_into_the_body_and_computes_the_same_states():
    torch.manual_seed(0)
    lm = MaskedLM(MaskedLMConfig(30, d_model=8, n_heads=2, n_layers=2, d_ff=16, max_len=10)).eval()
    with torch.no_grad():
        for p in lm.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model = transformer_classifier(pool="first").eval()
    head, cls = model.head.weight.detach().clone(), model.cls.detach().clone()
    model.load_body(lm.state_dict())
    theirs = lm.state_dict()
    for name, tensor in model.state_dict().items():
        if name.startswith(("embedding.", "position.", "embedding_norm.", "layers.", "norm.")):
            assert torch.equal(tensor, theirs[name]), name
    assert torch.equal(model.head.weight, head) and torch.equal(model.cls, cls)  # not in the body: untouched
    states = []
    model.norm.register_forward_hook(lambda module, args, out: states.append(out))
    ids = torch.tensor([[1, 5, 6, 7, 8, 9], [1, 10, 11, 0, 0, 0]])
    with torch.no_grad():
        model(ids)
        expected = lm.encode(ids)
    real = ids != 0
    torch.testing.assert_close(states[0][real], expected[real], rtol=1e-5, atol=1e-5)


def test_a_body_lacking_tensors_is_refused_naming_them():
    model = transformer_classifier(pool="first")
    state = {name: t for name, t in model.state_dict().items() if not name.startswith("layers.1.")}
    with pytest.raises(ValueError, match=r"the pre-trained encoder lacks layers\.1\.[\w.]+, layers\.1\."):
        model.load_body(state)


def trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_freeze_stops_the_embeddings_and_the_first_layers():
    model = transformer_classifier(norm_first=False)  # post-LN: a LayerNorm on the embeddings, frozen with them
    everything = trainable(model)
    model.freeze(0)
    assert trainable(model) == everything
    model.freeze(1)
    frozen = ("embedding.", "position.", "embedding_norm.", "layers.0.")
    assert trainable(model) == {name for name in everything if not name.startswith(frozen)}
    assert {"layers.1.ff.linear1.weight", "head.weight", "cls"} <= trainable(model)
    model.freeze(2)
    assert trainable(model) == {name for name in everything if not name.startswith(frozen + ("layers.1.",))}
    with pytest.raises(ValueError, match="cannot freeze 3 layers of 2"):
        model.freeze(3)


def test_mean_pooling_averages_the_real_tokens_final_states():
    # pool="mean": the head reads the average of the final states over the real (non-pad) tokens only.
    torch.manual_seed(0)
    model = c.TransformerClassifier(c.TransformerClassifierConfig(20, 3, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                                                  dropout=0.0, max_len=8, pool="mean")).eval()
    states = []
    model.norm.register_forward_hook(lambda module, args, out: states.append(out))
    ids = torch.tensor([[5, 6, 7, 0, 0], [1, 2, 3, 4, 9]])
    logits = model(ids)
    h = states[0]  # (B, T, D)
    pooled = torch.stack([h[0, :3].mean(0), h[1].mean(0)])
    torch.testing.assert_close(logits, pooled @ model.head.weight.T + model.head.bias)


def test_conv_classifier_embeds_pad_as_zeros_and_other_tokens_not():
    torch.manual_seed(0)
    model = c.ConvClassifier(c.ConvClassifierConfig(20, 3, d_model=8, widths=(2, 3), n_filters=4, pad_id=2)).eval()
    weight = model.embedding.weight
    assert torch.count_nonzero(weight[2]) == 0
    assert torch.count_nonzero(torch.cat([weight[:2], weight[3:]])) == weight.numel() - 8
    assert model.embedding.padding_idx == 2  # the pad row gets no gradient
    assert not torch.allclose(model(torch.tensor([[5, 6, 7, 8]])), model(torch.tensor([[9, 10, 11, 12]])))
