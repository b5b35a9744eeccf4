"""The decoder-only Transformer LM and the recurrent LM: cache equivalence, no peeking at the future,
sampling filters, rotary positions, save/load."""

import math

import pytest
import torch

from seqlab.models import RecurrentLM, RecurrentLMConfig, TransformerLM, TransformerLMConfig, from_pretrained
from seqlab.models.generation import filter_logits, generate
from seqlab.nn import RotaryEmbedding


def tiny_lm(positional="learned", max_len=32, **kwargs):
    return TransformerLM(TransformerLMConfig(40, d_model=32, n_heads=4, n_layers=2, max_len=max_len,
                                             positional=positional, **kwargs)).eval()


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rotary", "relative"])
def test_logits_with_cache_equal_logits_without(positional):
    model = tiny_lm(positional, max_relative_position=4)  # k < the sequence: clipping takes part
    ids = torch.randint(0, 40, (3, 20))
    full = model(ids)
    cache = model.new_cache()
    # A prompt of 6, one token at a time, then a chunk of 5 (needs the lower-right causal mask), then the rest.
    pieces = [model(ids[:, :6], cache)]
    pieces += [model(ids[:, t : t + 1], cache) for t in range(6, 12)]
    pieces += [model(ids[:, 12:17], cache), model(ids[:, 17:], cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.offset == 20


@pytest.mark.parametrize("positional", ["learned", "rotary", "relative"])
def test_no_position_sees_the_future(positional):
    model = tiny_lm(positional)
    ids = torch.randint(0, 40, (2, 16))
    changed = ids.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 40
    before, after = model(ids), model(changed)
    torch.testing.assert_close(before[:, :9], after[:, :9])
    assert not torch.allclose(before[:, 9], after[:, 9])
    # And through gradients: the loss at position 4 depends on no embedding after position 4.
    x = model.embedding(ids).detach().requires_grad_()
    h = model.position(x) if model.position is not None else x
    for layer in model.layers:
        h = layer(h, is_causal=True)
    model.lm_head(model.norm(h))[:, 4].sum().backward()
    assert x.grad[:, 5:].abs().max() == 0 and x.grad[:, :5].abs().max() > 0


def test_greedy_generation_with_cache_equals_recomputing_and_slides_past_max_len():
    model = tiny_lm(max_len=24)
    prompt = torch.randint(0, 40, (2, 5))
    cached = generate(model, prompt, 40, temperature=0)  # 45 tokens: past max_len, the window slides
    uncached = generate(model, prompt, 40, temperature=0, use_cache=False)
    reference = prompt
    for _ in range(40):
        reference = torch.cat([reference, model(reference[:, -24:])[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, reference) and torch.equal(uncached, reference)
    assert torch.equal(model.generate(prompt, 3, temperature=0), reference[:, :8])  # the method form


def test_sampling_stops_rows_at_eos_and_is_seeded():
    model = tiny_lm()
    prompt = torch.randint(0, 40, (4, 3))
    draw = lambda seed: generate(model, prompt, 30, top_k=5, eos_id=7,  # noqa: E731
                                 generator=torch.Generator().manual_seed(seed))
    first, again = draw(1), draw(1)
    assert torch.equal(first, again)
    for row in first[:, 3:]:
        hits = (row == 7).nonzero()
        if len(hits):
            assert (row[hits[0, 0]:] == 7).all()  # after <eos>, only <eos>


def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    # Nucleus 0.75: 0.5 alone is short of it, 0.5 + 0.3 reaches it -> the two most probable.
    assert torch.isfinite(filter_logits(logits, top_p=0.75)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.4)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()
    probs = filter_logits(logits, temperature=0.5).softmax(-1)
    torch.testing.assert_close(probs, torch.tensor([[0.5, 0.3, 0.15, 0.05]]) ** 2 / 0.3650, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="top_p"):
        generate(tiny_lm(), torch.zeros(1, 1, dtype=torch.long), 1, top_p=1.5)


def test_rotary_scores_depend_on_relative_position_only():
    rotary = RotaryEmbedding(8, max_len=64)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    score = lambda m, n: (rotary(q, m) * rotary(k, n)).sum()  # noqa: E731
    torch.testing.assert_close(score(3, 1), score(40, 38))
    torch.testing.assert_close(score(10, 10), (q * k).sum())  # no rotation between equal positions
    torch.testing.assert_close(rotary(q, 70).norm(), q.norm())  # beyond the table, still a rotation


def test_recurrent_lm_state_carries_the_past():
    for cell in ("rnn", "lstm", "gru"):
        model = RecurrentLM(RecurrentLMConfig(40, d_model=16, n_layers=2, cell=cell)).eval()
        ids = torch.randint(0, 40, (2, 12))
        cache = model.new_cache()
        pieces = [model(ids[:, :5], cache), model(ids[:, 5:6], cache), model(ids[:, 6:], cache)]
        torch.testing.assert_close(torch.cat(pieces, dim=1), model(ids), rtol=1e-5, atol=1e-5)
        assert torch.equal(generate(model, ids[:, :3], 10, temperature=0),
                           generate(model, ids[:, :3], 10, temperature=0, use_cache=False))


def test_recurrent_state_counts_the_positions_fed():
    model = RecurrentLM(RecurrentLMConfig(40, d_model=8, n_layers=1, cell="gru")).eval()
    cache = model.new_cache()
    assert cache.offset == 0 and cache.state is None
    ids = torch.randint(0, 40, (2, 7))
    model(ids[:, :4], cache)
    assert cache.offset == 4
    model(ids[:, 4:], cache)
    assert cache.offset == 7


def test_parameter_counts():
    # the unique parameters' sizes; the tied output layer is the embedding, counted once
    lm = tiny_lm("learned", max_len=32)
    total = sum(p.numel() for p in lm.parameters())
    assert lm.num_parameters() == total
    assert lm.num_parameters(embedding=False) == total - 32 * 32  # less the 32 × d_model position table
    untied = tiny_lm("learned", max_len=32, tie_weights=False)
    assert untied.num_parameters() == total + 40 * 32 + sum(p.numel() for n, p in untied.lm_head.named_parameters()
                                                             if n == "bias")
    sinusoidal = tiny_lm("sinusoidal", max_len=32)  # a fixed table: nothing to leave out
    assert sinusoidal.num_parameters(embedding=False) == sinusoidal.num_parameters() == total - 32 * 32
    rnn = RecurrentLM(RecurrentLMConfig(40, d_model=8, n_layers=1, cell="gru", tie_weights=False))
    # embedding 40·8, one GRU layer 3·(8·8 + 8·8 + 8 + 8), output 8·40 + 40
    assert rnn.num_parameters() == 40 * 8 + 3 * (64 + 64 + 16) + 8 * 40 + 40


def test_save_and_load_pretrained(tmp_path):
    model = tiny_lm("rotary", tie_weights=True)
    model.save_pretrained(tmp_path / "lm")
    loaded = TransformerLM.from_pretrained(tmp_path / "lm").eval()
    ids = torch.randint(0, 40, (2, 10))
    torch.testing.assert_close(loaded(ids), model(ids))
    assert loaded.lm_head.weight is loaded.embedding.weight  # still tied after loading
    rnn = RecurrentLM(RecurrentLMConfig(40, 16, cell="gru"))
    rnn.save_pretrained(tmp_path / "rnn")
    assert isinstance(from_pretrained(tmp_path / "rnn"), RecurrentLM)


def test_initial_loss_is_near_uniform():
    model = tiny_lm().train()
    ids, targets = torch.randint(0, 40, (4, 32)), torch.randint(0, 40, (4, 32))
    loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
    assert abs(loss.item() - math.log(40)) < 0.1  # GPT-2 init: small logits at the start


@pytest.mark.compiles
def test_model_compiles_without_graph_breaks():
    model = tiny_lm().train()
    ids = torch.randint(0, 40, (4, 32))
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)  # no graph breaks
    torch.testing.assert_close(compiled(ids), model(ids))


def test_relative_positions_save_and_load(tmp_path):
    model = tiny_lm("relative", max_relative_position=5)
    assert model.position is None and all(layer.self_attn.relative.max_distance == 5 for layer in model.layers)
    with torch.no_grad():
        model.layers[1].self_attn.relative.key.weight.add_(0.5)  # not the initial values
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    ids = torch.randint(0, 40, (2, 12))
    torch.testing.assert_close(loaded(ids), model(ids))


def test_embedding_scale_multiplies_the_token_embeddings_by_sqrt_d_model():
    """Vaswani et al. §3.4: the same model with its embedding table scaled by √d_model by hand (output
    layer untied, so only the input side changes) gives the same logits."""
    import math

    from seqlab.models import TransformerLM, TransformerLMConfig

    torch.manual_seed(0)
    config = dict(d_model=16, n_heads=2, n_layers=1, max_len=12, positional="sinusoidal", tie_weights=False)
    scaled = TransformerLM(TransformerLMConfig(20, embedding_scale=True, **config)).eval()
    plain = TransformerLM(TransformerLMConfig(20, **config)).eval()
    plain.load_state_dict(scaled.state_dict())
    with torch.no_grad():
        plain.embedding.weight.mul_(math.sqrt(16))
        ids = torch.randint(0, 20, (2, 7))
        torch.testing.assert_close(scaled(ids), plain(ids))


def test_recurrent_lm_config_names_the_cells():
    with pytest.raises(ValueError, match=r"^cell must be one of rnn, lstm, gru; got 'transformer'$"):
        RecurrentLMConfig(10, cell="transformer")


def test_recurrent_lm_has_the_configured_layers_dropout_and_a_small_embedding_init():
    torch.manual_seed(0)
    vocab, d, layers = 500, 32, 3
    model = RecurrentLM(RecurrentLMConfig(vocab, d_model=d, n_layers=layers, cell="lstm", dropout=0.5,
                                          tie_weights=False))
    # parameters: embedding, torch's 3-layer LSTM of the same widths, and the head
    lstm = torch.nn.LSTM(d, d, layers)
    expected = vocab * d + sum(p.numel() for p in lstm.parameters()) + d * vocab + vocab
    assert sum(p.numel() for p in model.parameters()) == expected
    # N(0, 0.02) embeddings (16 000 draws: the sample std is within a few percent of 0.02)
    assert 0.018 < model.embedding.weight.std().item() < 0.022
    # dropout between the recurrent layers: with the outer dropout off, training-mode outputs still vary
    model.dropout.p = 0.0
    model.train()
    ids = torch.randint(0, vocab, (2, 6))
    assert not torch.allclose(model(ids), model(ids))
    model.eval()
    torch.testing.assert_close(model(ids), model(ids))
