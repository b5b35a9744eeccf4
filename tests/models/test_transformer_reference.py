"""The encoder-decoder Transformer against torch's own encoder and decoder stacks with the same weights,
the paper's embedding (√d_model scaling, §3.4) and sinusoidal table (§3.5) written out here."""

import math

import pytest
import torch
from torch import nn

from seqlab.models import Transformer, TransformerConfig
from seqlab.models.transformer import TokenEmbedding
from seqlab.nn import RelativePositions

from torch_reference import copy_attention  # tests/ is on sys.path (its conftest)

D, H, F = 16, 2, 32
SRC = torch.tensor([[3, 4, 5, 6, 7, 8], [9, 10, 2, 0, 0, 0]])  # the second sentence padded (pad_id 0)
TGT = torch.tensor([[1, 5, 7, 12, 3], [1, 2, 11, 4, 4]])


def paper_table(n: int, d: int, offset: int = 0) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    table = torch.zeros(n, d)
    for pos in range(offset, offset + n):
        for i in range(0, d, 2):
            table[pos - offset, i] = math.sin(pos / 10000 ** (i / d))
            table[pos - offset, i + 1] = math.cos(pos / 10000 ** (i / d))
    return table



def copy_layer(ours, theirs, cross: bool):
    copy_attention(ours.self_attn, theirs.self_attn)
    if cross:
        copy_attention(ours.cross_attn, theirs.multihead_attn)
    for name in ("linear1", "linear2"):
        getattr(theirs, name).load_state_dict(getattr(ours.ff, name).state_dict())
    for name in ("norm1", "norm2", "norm3") if cross else ("norm1", "norm2"):
        nn.init.normal_(getattr(ours, name).weight), nn.init.normal_(getattr(ours, name).bias)  # non-trivial
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())


@torch.no_grad()
def torch_stacks(model: Transformer):
    c = model.config
    n_dec = c.n_decoder_layers or c.n_layers
    final = (lambda: nn.LayerNorm(D)) if c.norm_first else (lambda: None)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, F, 0.0, c.activation, batch_first=True,
                                                               norm_first=c.norm_first),
                                    c.n_layers, final(), enable_nested_tensor=False)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, F, 0.0, c.activation, batch_first=True,
                                                               norm_first=c.norm_first), n_dec, final())
    assert len(model.encoder.layers) == c.n_layers and len(model.decoder.layers) == n_dec
    for ours, theirs in zip(model.encoder.layers, encoder.layers, strict=True):
        copy_layer(ours, theirs, cross=False)
    for ours, theirs in zip(model.decoder.layers, decoder.layers, strict=True):
        copy_layer(ours, theirs, cross=True)
    if c.norm_first:
        for ours, theirs in ((model.encoder.norm, encoder.norm), (model.decoder.norm, decoder.norm)):
            nn.init.normal_(ours.weight), nn.init.normal_(ours.bias)
            theirs.load_state_dict(ours.state_dict())
    else:
        assert model.encoder.norm is None and model.decoder.norm is None
    return encoder.eval(), decoder.eval()


def reference_logits(model, encoder, decoder, src_embedded, tgt_embedded, src=SRC):
    memory = encoder(src_embedded, src_key_padding_mask=src == 0)
    T = tgt_embedded.size(1)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # torch: True = may NOT attend
    out = decoder(tgt_embedded, memory, tgt_mask=future, memory_key_padding_mask=src == 0)
    return out @ model.generator.weight.T + model.generator.bias


def test_post_ln_sinusoidal_model_is_torchs_transformer_with_the_papers_embeddings():
    model = Transformer(TransformerConfig(11, 13, d_model=D, n_heads=H, n_layers=2, d_ff=F, dropout=0.3,
                                          max_len=20, n_decoder_layers=3, tie_output=False)).eval()
    for embed in (model.src_embed, model.tgt_embed):  # the fixed table holds max_len positions
        assert embed.positional.table.shape == (20, D) and embed.norm is None and embed.dropout.p == 0.3
    encoder, decoder = torch_stacks(model)
    S, T = SRC.size(1), TGT.size(1)
    src_embedded = model.src_embed.embedding.weight[SRC] * math.sqrt(D) + paper_table(S, D)
    tgt_embedded = model.tgt_embed.embedding.weight[TGT] * math.sqrt(D) + paper_table(T, D)
    expected = reference_logits(model, encoder, decoder, src_embedded, tgt_embedded)
    torch.testing.assert_close(model(SRC, TGT), expected, atol=1e-4, rtol=1e-4)
    # the pieces, called as the greedy and beam searches call them
    memory, memory_mask = model.encode(SRC)
    assert torch.equal(memory_mask, (SRC != 0)[:, None, :])
    torch.testing.assert_close(model.decode(TGT, memory, memory_mask), expected, atol=1e-4, rtol=1e-4)
    logits, maps = model(SRC, TGT, need_weights=True)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert sorted(maps) == ["cross", "decoder", "encoder"]
    assert [m.shape for m in maps["encoder"]] == [(2, H, S, S)] * 2
    assert [m.shape for m in maps["decoder"]] == [(2, H, T, T)] * 3
    assert [m.shape for m in maps["cross"]] == [(2, H, T, S)] * 3
    for m in maps["encoder"] + maps["cross"]:  # nothing attends to the padding of the second sentence
        assert m[1, ..., 3:].abs().max() == 0
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]))
    for m in maps["decoder"]:  # nor to the future
        assert (m * torch.ones(T, T).triu(1)).abs().max() == 0


def test_pre_ln_learned_positions_and_a_bert_style_source_side_are_torchs_transformer():
    model = Transformer(TransformerConfig(11, 13, d_model=D, n_heads=H, n_layers=2, d_ff=F, dropout=0.0,
                                          norm_first=True, positional="learned", activation="gelu",
                                          src_embedding_scale=False, src_embedding_norm=True)).eval()
    encoder, decoder = torch_stacks(model)
    norm = model.src_embed.norm
    with torch.no_grad():
        nn.init.normal_(norm.weight), nn.init.normal_(norm.bias)
    src_pos, tgt_pos = model.src_embed.positional, model.tgt_embed.positional
    assert src_pos is not tgt_pos and src_pos.embedding.weight.shape == (model.config.max_len, D)
    S, T = SRC.size(1), TGT.size(1)
    src_embedded = nn.functional.layer_norm(model.src_embed.embedding.weight[SRC] + src_pos.embedding.weight[:S],
                                            (D,), norm.weight, norm.bias)  # not scaled, LayerNorm'd
    tgt_embedded = model.tgt_embed.embedding.weight[TGT] * math.sqrt(D) + tgt_pos.embedding.weight[:T]
    expected = reference_logits(model, encoder, decoder, src_embedded, tgt_embedded)
    torch.testing.assert_close(model(SRC, TGT), expected, atol=1e-4, rtol=1e-4)
    assert model.generator.weight is model.tgt_embed.embedding.weight  # tied (§3.4)
    assert model.tgt_embed.norm is None


def test_token_embedding_scales_adds_the_position_at_the_offset_and_drops_out():
    torch.manual_seed(0)
    tokens = torch.tensor([[1, 2, 3]])
    plain = TokenEmbedding(5, 4, None, 0.0, scale=False).eval()
    torch.testing.assert_close(plain(tokens), plain.embedding.weight[tokens])
    from seqlab.nn import SinusoidalPositionalEncoding
    scaled = TokenEmbedding(5, 4, SinusoidalPositionalEncoding(4, 16), 0.0).eval()
    torch.testing.assert_close(scaled(tokens), scaled.embedding.weight[tokens] * 2.0 + paper_table(3, 4))
    torch.testing.assert_close(scaled(tokens, 5), scaled.embedding.weight[tokens] * 2.0 + paper_table(3, 4, 5))
    dropping = TokenEmbedding(5, 4, None, 0.5).train()
    assert dropping.dropout.p == 0.5
    assert (dropping(tokens) == 0).any()


def test_every_matrix_starts_xavier_uniform_but_the_relative_position_tables():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(40, 40, d_model=32, n_heads=2, n_layers=2, d_ff=64,
                                          positional="relative", max_relative_position=16, tie_output=False))
    tables = {id(p) for m in model.modules() if isinstance(m, RelativePositions) for p in m.parameters()}
    assert len(tables) == 2 * (2 + 2)  # a^K and a^V in every self-attention, encoder and decoder
    for name, p in model.named_parameters():
        if id(p) in tables:
            assert 0.015 < p.std() < 0.025, name  # N(0, 0.02) as RelativePositions draws them
        elif p.dim() > 1:
            bound = math.sqrt(6 / (p.size(0) + p.size(1)))  # Glorot & Bengio (2010)
            assert 0.9 * bound < p.abs().max() <= bound, name
    linear = model.decoder.layers[0].ff.linear1
    assert 0 < linear.bias.abs().max() <= 1 / math.sqrt(32)  # biases keep torch's own initialisation


def test_shared_embeddings_are_one_matrix_and_the_output_layer_can_be_untied():
    shared = Transformer(TransformerConfig(11, 11, d_model=D, n_heads=H, n_layers=1, d_ff=F, share_embeddings=True))
    assert shared.src_embed.embedding.weight is shared.tgt_embed.embedding.weight is shared.generator.weight
    untied = Transformer(TransformerConfig(11, 13, d_model=D, n_heads=H, n_layers=1, d_ff=F, tie_output=False))
    assert untied.generator.weight is not untied.tgt_embed.embedding.weight
    assert untied.src_embed.embedding.weight.shape == (11, D) and untied.generator.weight.shape == (13, D)
    assert untied.pad_id == 0 and untied.max_len == 512


def test_config_is_checked():
    with pytest.raises(ValueError, match=r"positional must be one of \['learned', 'relative', 'sinusoidal'\], "
                                         r"got 'rotary'"):
        TransformerConfig(11, 13, positional="rotary")
    with pytest.raises(ValueError, match="max_relative_position must be at least 1; got 0"):
        TransformerConfig(11, 13, max_relative_position=0)
    TransformerConfig(11, 13, max_relative_position=1)
    with pytest.raises(ValueError, match="^share_embeddings needs one vocabulary for source and target$"):
        TransformerConfig(11, 13, share_embeddings=True)
    TransformerConfig(11, 11, share_embeddings=True)
    for positional in ("sinusoidal", "learned", "relative"):
        TransformerConfig(11, 13, positional=positional)
