"""Decoding through fixed-size key/value buffers (TransformerLM.decode_step) and generate(compile=True):
the step's logits and cached keys and values against forward with the growing cache, step by step,
eager; then through torch.compile, whose tokens must be eager generate's (greedy and seeded sampling)."""

import pytest
import torch

from seqlab.models.generation import CompileError, check_compile, generate
from seqlab.models.language_model import TransformerLM, TransformerLMConfig
from seqlab.models.recurrent_lm import RecurrentLM, RecurrentLMConfig


def tiny_lm(positional="learned", norm_first=True, embedding_scale=False, n_layers=2):
    torch.manual_seed(0)
    config = TransformerLMConfig(vocab_size=23, d_model=16, n_heads=2, n_layers=n_layers, max_len=24,
                                 positional=positional, norm_first=norm_first, embedding_scale=embedding_scale)
    model = TransformerLM(config).eval()
    with torch.no_grad():  # the layer norms away from (1, 0), so that a skipped one would show
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("positional, norm_first, embedding_scale", [
    ("learned", True, False), ("learned", False, False), ("sinusoidal", True, True), ("sinusoidal", False, False)])
@torch.no_grad()
def test_each_step_equals_forward_with_the_growing_cache(positional, norm_first, embedding_scale):
    model = tiny_lm(positional, norm_first, embedding_scale)
    ids = torch.randint(0, 23, (3, 14), generator=torch.Generator().manual_seed(1))
    growing = model.new_cache()
    model(ids[:, :4], growing)
    static = model.static_cache(growing, capacity=20)
    for t in range(4, 14):
        expected = model(ids[:, t : t + 1], growing)  # (B, 1, V)
        got = model.decode_step(ids[:, t : t + 1], static)
        static.advance()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        assert static.offset == growing.offset == t + 1 and static.position.tolist() == [t + 1]
    for layer_static, layer_growing in zip(static, growing):  # written where they belong, zeros after
        torch.testing.assert_close(layer_static.key[:, :, :14], layer_growing.key, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(layer_static.value[:, :, :14], layer_growing.value, rtol=1e-5, atol=1e-6)
        assert not layer_static.key[:, :, 14:].any() and not layer_static.value[:, :, 14:].any()


@torch.no_grad()
def test_unwritten_positions_are_not_attended():
    """Garbage where no token has been written yet must not change a step's logits."""
    model = tiny_lm()
    ids = torch.randint(0, 23, (2, 5), generator=torch.Generator().manual_seed(2))
    caches = []
    for fill in (0.0, 1e3):
        growing = model.new_cache()
        model(ids[:, :4], growing)
        static = model.static_cache(growing, capacity=12)
        for layer in static:
            layer.key[:, :, 4:] = fill
            layer.value[:, :, 4:] = fill
        caches.append(model.decode_step(ids[:, 4:], static))
    torch.testing.assert_close(caches[0], caches[1], rtol=0, atol=0)


@torch.no_grad()
def test_the_static_cache_refuses_what_it_cannot_hold():
    model = tiny_lm()
    growing = model.new_cache()
    model(torch.zeros(1, 6, dtype=torch.long), growing)
    for capacity in (6, 25):  # no room for a new position; past max_len (24)
        with pytest.raises(ValueError, match="capacity"):
            model.static_cache(growing, capacity)


@pytest.mark.parametrize("model, word", [
    (tiny_lm("rotary"), "rotary"), (tiny_lm("relative"), "relative"),
    (RecurrentLM(RecurrentLMConfig(vocab_size=5)), "RecurrentLM")])
def test_compile_is_refused_by_name_where_there_is_no_static_step(model, word):
    with pytest.raises(ValueError, match=word):
        check_compile(model)
    with pytest.raises(ValueError, match=word):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, compile=True)


def test_compile_is_refused_without_the_cache():
    with pytest.raises(ValueError, match="was asked for none"):
        generate(tiny_lm(), torch.zeros(1, 2, dtype=torch.long), 3, use_cache=False, compile=True)


def test_a_prompt_that_fills_the_context_slides_without_compiling(monkeypatch):
    """No room is left for a cache of fixed size: generation goes on as eager's, and compiles nothing."""
    model = tiny_lm()
    prompt = torch.randint(0, 23, (2, 24), generator=torch.Generator().manual_seed(5))  # max_len 24
    eager = generate(model, prompt, 4, temperature=0)
    monkeypatch.setattr(torch, "compile", broken_compile)
    assert torch.equal(generate(model, prompt, 4, temperature=0, compile=True), eager)


@pytest.mark.compiles
def test_compiled_generation_makes_eager_generations_tokens():
    """One compile (a small model: seconds); greedy and seeded top-k sampling share its graph. The
    continuation runs past max_len, where both slide the window without a cache."""
    from torch._dynamo.utils import counters

    model = tiny_lm(n_layers=1)
    prompt = torch.randint(0, 23, (3, 5), generator=torch.Generator().manual_seed(3))
    counters.clear()
    for knobs in ({"temperature": 0}, {"temperature": 1.0, "top_k": 8}):
        eager, compiled = (generate(model, prompt, 24, **knobs, generator=torch.Generator().manual_seed(4),
                                    compile=c) for c in (False, True))
        assert compiled.shape == (3, 29)
        assert torch.equal(compiled, eager), knobs
    assert counters["stats"]["unique_graphs"] >= 1  # the step did go through a compiled graph


def broken_compile(*args, **kwargs):
    def fail(*args):
        raise RuntimeError("no C++ compiler found\nthe details, over many lines")
    return fail


def test_a_backend_that_cannot_compile_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(CompileError, match=r"^torch.compile could not build the decoding step \(RuntimeError: no C\+\+ "
                                           r"compiler found\); generate without compiling$"):
        generate(tiny_lm(), torch.zeros(1, 2, dtype=torch.long), 3, compile=True)
