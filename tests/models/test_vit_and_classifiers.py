"""Vision Transformer pieces (patchify, rollout) and the text classifiers' mask-aware pooling and
word-vector initialisation."""

import numpy as np
import pytest
import torch

from seqlab.data import word_vectors
from seqlab.data.tokenizer import train_tokenizer
from seqlab.models import classifiers, from_pretrained
from seqlab.models.vit import VisionTransformer, VisionTransformerConfig, attention_rollout, patchify, unpatchify


def test_patchify_orders_patches_row_major_and_round_trips():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    patches = patchify(images, 4)
    assert patches.shape == (2, 4, 3 * 16)
    # patch 1 is the top-right 4×4 block of every channel
    torch.testing.assert_close(patches[0, 1].view(3, 4, 4), images[0, :, :4, 4:])
    torch.testing.assert_close(unpatchify(patches, 4, 3, 8, 8), images)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        patchify(torch.zeros(1, 1, 7, 8), 2)


def test_vit_shapes_and_rollout_is_a_distribution_over_patches():
    model = VisionTransformer(VisionTransformerConfig(8, 10, channels=1, patch_size=2, d_model=16, n_heads=2, n_layers=2,
                                                      d_ff=32)).eval()
    images = torch.rand(3, 1, 8, 8)
    logits, maps = model(images, need_weights=True)
    assert logits.shape == (3, 10) and [w.shape for w in maps] == [(3, 2, 17, 17)] * 2
    torch.testing.assert_close(logits, model(images))  # asking for the weights changes nothing else
    rollout = attention_rollout(maps)
    assert rollout.shape == (3, 16) and (rollout >= 0).all()
    # Rows of each rollout step sum to 1; the [CLS] row's patch part is what is left after [CLS] itself.
    assert (rollout.sum(-1) <= 1.0 + 1e-5).all() and (rollout.sum(-1) > 0).all()


def test_uniform_attention_rolls_out_evenly():
    T = 5
    uniform = torch.full((1, 2, T, T), 1.0 / T)
    rollout = attention_rollout([uniform, uniform])
    torch.testing.assert_close(rollout, torch.full((1, T - 1), rollout[0, 0].item()))


def test_rollout_equals_the_papers_definition_by_hand():
    # Abnar & Zuidema (2020), §3: per layer Ã = 0.5·A + 0.5·I (A: the heads' mean), rows renormalised;
    # rollout = Ã_2 · Ã_1. Tokens: [CLS], patch 1, patch 2; two layers of two heads.
    layer1 = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]],
                           [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]])
    layer2 = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
                           [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    # Ã_1 = [[.75, .125, .125], [0, 1, 0], [.125, .125, .75]]; Ã_2 = [[.5, .25, .25], [.25, .5, .25], [.25, .25, .5]]
    # [CLS] row of Ã_2·Ã_1 = .5·[.75, .125, .125] + .25·[0, 1, 0] + .25·[.125, .125, .75] = [.40625, .34375, .25]
    expected = torch.tensor([[0.34375, 0.25]])
    torch.testing.assert_close(attention_rollout([layer1[None], layer2[None]]), expected)


def test_pooling_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [-100.0], [-100.0]]])
    keep = torch.tensor([[True, True, False], [True, False, False]])
    assert classifiers.masked_mean(x, keep).squeeze(-1).tolist() == [2.0, 2.0]
    assert classifiers.masked_max(x, keep).squeeze(-1).tolist() == [3.0, 2.0]


@pytest.mark.parametrize("make", [
    lambda: classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=12)),
    lambda: classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=12, pool="cls")),
    lambda: classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=12, pool="cls", positional="relative",
        max_relative_position=2)),
    lambda: classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=12, pool="last", causal=True)),
    lambda: classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=12, positional="rotary")),
    lambda: classifiers.LSTMClassifier(classifiers.LSTMClassifierConfig(30, 3, d_model=16, hidden_size=8)),
    lambda: classifiers.ConvClassifier(classifiers.ConvClassifierConfig(30, 3, d_model=16, n_filters=4)),
])
def test_padding_does_not_change_a_prediction(make):
    model = make().eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[5, 6, 7, 8, 0, 0, 0, 0]])
    torch.testing.assert_close(model(ids), model(padded), rtol=1e-5, atol=1e-5)
    assert model(torch.tensor([[5, 6]])).shape == (1, 3)  # shorter than the widest filter


def test_transformer_classifier_with_relative_positions_saves_and_loads(tmp_path):
    model = classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=12, positional="relative", max_relative_position=3))
    x = torch.randn(1, 4, 16)
    assert torch.equal(model.position(x), x)  # no absolute position is added
    assert all(layer.self_attn.relative.max_distance == 3 for layer in model.layers)
    with torch.no_grad():
        model.layers[0].self_attn.relative.key.weight.add_(0.5)  # not the initial values
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 0, 0]])
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(ids), model.eval()(ids))
    with pytest.raises(ValueError, match="positional"):
        classifiers.TransformerClassifierConfig(30, 3, positional="alibi")


def test_word2vec_initialises_the_embedding_and_can_be_frozen():
    sentences = ["the film is good", "the film is bad", "a good story", "a bad story"] * 20
    tokenizer = train_tokenizer(sentences, "word", 100)
    tokens = [e.tokens for e in tokenizer.encode_batch(sentences)]
    vectors = word_vectors.train_word2vec(tokens, 8, skip_gram=True, epochs=5, seed=0)
    matrix, coverage = word_vectors.embedding_matrix(tokenizer, vectors, 8)
    assert coverage > 0.5  # every word but the special tokens
    model = classifiers.ConvClassifier(classifiers.ConvClassifierConfig(tokenizer.get_vocab_size(), 2, d_model=8,
                                                                        n_filters=2))
    model.load_vectors(matrix, freeze=True)
    film = tokenizer.token_to_id("film")
    np.testing.assert_allclose(model.embedding.weight[film].detach().numpy(), vectors["film"])
    assert not model.embedding.weight.requires_grad
    with pytest.raises(Exception, match="dimensions"):
        word_vectors.embedding_matrix(tokenizer, vectors, 16)


def test_glove_file_is_read(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("film 0.1 0.2\ngood -1 2.5\n", encoding="utf-8")
    vectors = word_vectors.read_glove(path)
    assert vectors["good"].tolist() == [-1.0, 2.5]
    path.write_text("film 0.1 0.2\ngood x y\n", encoding="utf-8")
    with pytest.raises(Exception, match="line 2"):
        word_vectors.read_glove(path)


def causal_classifier(**settings):
    return classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
        30, 3, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=12, pool="last", causal=True, **settings)).eval()


def final_states(model, ids):
    """The body's output (B, T, D), before pooling."""
    states = []
    handle = model.norm.register_forward_hook(lambda module, args, out: states.append(out))
    model(ids)
    handle.remove()
    return states[0]


@pytest.mark.parametrize("settings", [{}, {"positional": "relative", "max_relative_position": 2},
                                      {"positional": "rotary", "norm_first": False}])
def test_a_causal_classifiers_state_at_t_reads_no_later_token(settings):
    model = causal_classifier(**settings)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    changed = torch.tensor([[5, 6, 7, 20, 21, 22]])  # the same up to t = 2
    before, after = final_states(model, ids), final_states(model, changed)
    torch.testing.assert_close(before[:, :3], after[:, :3])
    assert not torch.allclose(before[:, 3:], after[:, 3:])  # the later tokens do count where they may
    # need_weights takes the explicit mask instead of the fused causal path: the same states, and
    # weights that put nothing on a later key
    logits, maps = model(ids, need_weights=True)
    torch.testing.assert_close(logits, model(ids))
    assert all(torch.equal(w[0, :].triu(1), torch.zeros_like(w[0, :])) for w in maps)


def test_pool_last_classifies_each_rows_last_real_token():
    model = causal_classifier()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    states, pooled = final_states(model, ids), []
    model.head.register_forward_hook(lambda module, args, out: pooled.append(args[0]))
    model(ids)
    torch.testing.assert_close(pooled[0], torch.stack([states[0, 3], states[1, 1]]))


def test_pool_last_and_causal_go_together_and_gpts_body_has_no_embedding_norm():
    for pool, causal in (("last", False), ("first", True)):
        with pytest.raises(ValueError, match="causal"):
            classifiers.TransformerClassifierConfig(30, 3, pool=pool, causal=causal)
    post_ln = causal_classifier(norm_first=False, embedding_norm=False)
    assert isinstance(post_ln.embedding_norm, torch.nn.Identity)
    assert isinstance(causal_classifier(norm_first=False).embedding_norm, torch.nn.LayerNorm)  # BERT's, by default
