import torch

from seqlab.models import Transformer, TransformerConfig, from_pretrained


def small(**kw):
    return Transformer(TransformerConfig(11, 13, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0, **kw)).eval()


def test_shapes_and_tied_output():
    model = small()
    logits = model(torch.randint(1, 11, (3, 7)), torch.randint(1, 13, (3, 5)))
    assert logits.shape == (3, 5, 13)
    assert model.generator.weight is model.tgt_embed.embedding.weight


def test_decoder_is_causal_no_leak():
    model = small()
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 8))
    base = model(src, tgt)
    for t in range(7):
        changed = tgt.clone()
        changed[:, t + 1 :] = torch.randint(1, 13, changed[:, t + 1 :].shape)
        torch.testing.assert_close(model(src, changed)[:, : t + 1], base[:, : t + 1])


def test_source_padding_does_not_change_outputs():
    model = small()
    src, tgt = torch.randint(1, 11, (1, 5)), torch.randint(1, 13, (1, 4))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)


def test_cached_decoding_equals_full_forward():
    for norm_first, positional in [(False, "sinusoidal"), (True, "learned"), (False, "relative"), (True, "relative")]:
        model = small(norm_first=norm_first, positional=positional, max_relative_position=2)
        src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 7))
        memory, memory_mask = model.encode(src)
        full = model.decode(tgt, memory, memory_mask)
        cache = model.new_cache()
        steps = [model.decode(tgt[:, :2], memory, memory_mask, cache)]  # a prompt, then one at a time
        steps += [model.decode(tgt[:, t : t + 1], memory, memory_mask, cache) for t in range(2, 7)]
        torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_save_and_load_pretrained(tmp_path):
    model = small(share_embeddings=False)
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path).eval()
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 7))
    torch.testing.assert_close(loaded(src, tgt), model(src, tgt))
    assert loaded.generator.weight is loaded.tgt_embed.embedding.weight
    assert Transformer.from_pretrained(tmp_path).config == model.config


def test_relative_positions_replace_absolute_ones_in_every_self_attention():
    model = small(positional="relative", max_relative_position=3)
    assert model.src_embed.positional is None and model.tgt_embed.positional is None
    layers = [*model.encoder.layers, *model.decoder.layers]
    assert all(layer.self_attn.relative.max_distance == 3 for layer in layers)
    assert len({id(layer.self_attn.relative) for layer in layers}) == len(layers)  # one table pair per layer
    assert all(layer.cross_attn.relative is None for layer in model.decoder.layers)
    # the tables start at N(0, 0.02) as in the other models, not at the Xavier init of the weight matrices
    tables = torch.cat([t.weight.flatten() for layer in layers for t in (layer.self_attn.relative.key,
                                                                          layer.self_attn.relative.value)])
    assert 0.01 < tables.std().item() < 0.03


def test_relative_positions_make_the_source_shift_invariant():
    """Padding on the left shifts the source by 3 positions behind masked keys: with relative positions
    the logits are unchanged (only offsets j - i count), with the sinusoidal table they change."""
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 5))
    shifted = torch.cat([torch.zeros(2, 3, dtype=torch.long), src], 1)
    relative = small(positional="relative", max_relative_position=2)
    torch.testing.assert_close(relative(shifted, tgt), relative(src, tgt), atol=1e-5, rtol=1e-5)
    absolute = small()
    assert not torch.allclose(absolute(shifted, tgt), absolute(src, tgt), atol=1e-3)


def test_save_and_load_pretrained_with_relative_positions(tmp_path):
    model = small(positional="relative", max_relative_position=3)
    with torch.no_grad():
        model.decoder.layers[0].self_attn.relative.value.weight.add_(1.0)  # not the initial values
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 7))
    torch.testing.assert_close(loaded(src, tgt), model(src, tgt))
