"""save_pretrained / from_pretrained for every model class: a model saved here loads in a fresh Python
process (which has imported nothing but seqlab.models) and computes exactly the same outputs."""

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pytest
import torch

from safetensors.torch import load_file, save_file, save_model

import seqlab
from seqlab.errors import UserError
from seqlab import models as m
from seqlab.models import forecasters as fm

B, C, L, H = 2, 3, 16, 4  # forecasters: batch, channels, input length, horizon


def tokens(vocab: int, length: int, pad_tail: int = 0) -> torch.Tensor:
    ids = torch.randint(1, vocab, (B, length))
    if pad_tail:
        ids[0, -pad_tail:] = 0  # one padded row: padding masks take part
    return ids


# class name -> (small model, its inputs). Every registered class must have a case (checked below).
CASES = {
    "Transformer": (lambda: m.Transformer(m.TransformerConfig(11, 13, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                                              norm_first=True, positional="learned")),
                    lambda: (tokens(11, 6, pad_tail=2), tokens(13, 5))),
    "TransformerLM": (lambda: m.TransformerLM(m.TransformerLMConfig(17, d_model=16, n_heads=2, n_layers=2, max_len=12,
                                                                    positional="rotary")),
                      lambda: (tokens(17, 9),)),
    "MaskedLM": (lambda: m.MaskedLM(m.MaskedLMConfig(23, d_model=16, n_heads=2, n_layers=2, max_len=12)),
                 lambda: (tokens(23, 10, pad_tail=3),)),
    "RecurrentLM": (lambda: m.RecurrentLM(m.RecurrentLMConfig(17, d_model=8, n_layers=2, cell="gru")),
                    lambda: (tokens(17, 9),)),
    "Seq2Seq": (lambda: m.Seq2Seq(m.Seq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, score="general", window=2)),
                lambda: (tokens(11, 6, pad_tail=2), tokens(13, 5))),
    "ConvSeq2Seq": (lambda: m.ConvSeq2Seq(m.ConvSeq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, n_layers=2,
                                                              max_len=16)),
                    lambda: (tokens(11, 6, pad_tail=2), tokens(13, 5))),
    "TimeStepTransformer": (lambda: fm.TimeStepTransformer(fm.TimeStepTransformerConfig(C, L, H, d_model=16, n_heads=2,
                                                                                        n_layers=1, d_ff=32)),
                            lambda: (torch.randn(B, L, C),)),
    "PatchTransformer": (lambda: fm.PatchTransformer(fm.PatchTransformerConfig(C, L, H, d_model=16, n_heads=2, n_layers=1,
                                                                               d_ff=32, patch_len=8, stride=4)),
                         lambda: (torch.randn(B, L, C),)),
    "RecurrentForecaster": (lambda: fm.RecurrentForecaster(fm.RecurrentForecasterConfig(C, L, H, d_model=8)),
                            lambda: (torch.randn(B, L, C),)),
    "ConvForecaster": (lambda: fm.ConvForecaster(fm.ConvForecasterConfig(C, L, H, d_model=8, n_layers=2)),
                       lambda: (torch.randn(B, L, C),)),
    "LinearForecaster": (lambda: fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, kernel_size=5, revin=True)),
                         lambda: (torch.randn(B, L, C),)),
    "PeriodicLinearForecaster": (lambda: fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, H,
                                                                                                       period=4)),
                                 lambda: (torch.randn(B, L, C),)),
    "CovariateForecaster": (lambda: m.CovariateForecaster.around(
                                fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, quantiles=(0.1, 0.5))), 2, 1),
                            lambda: (torch.randn(B, L, C + 3), torch.randn(B, H, 1))),
    "ForecastEnsemble": (lambda: fm.ForecastEnsemble.of([
                             fm.LinearForecaster(fm.LinearForecasterConfig(C, L // 2, H, kernel_size=5)),
                             fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, H, period=4))]),
                         lambda: (torch.randn(B, L, C),)),
    "TransformerClassifier": (lambda: m.TransformerClassifier(m.TransformerClassifierConfig(
                                  30, 3, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=12, pool="cls")),
                              lambda: (tokens(30, 10, pad_tail=4),)),
    "LSTMClassifier": (lambda: m.LSTMClassifier(m.LSTMClassifierConfig(30, 3, d_model=8, hidden_size=8)),
                       lambda: (tokens(30, 10, pad_tail=4),)),
    "ConvClassifier": (lambda: m.ConvClassifier(m.ConvClassifierConfig(30, 3, d_model=8, widths=(2, 3), n_filters=4)),
                       lambda: (tokens(30, 10, pad_tail=4),)),
    "VisionTransformer": (lambda: m.VisionTransformer(m.VisionTransformerConfig(8, 10, patch_size=4, d_model=16,
                                                                                n_heads=2, n_layers=1, d_ff=32)),
                          lambda: (torch.randn(B, 1, 8, 8),)),
    "DETR": (lambda: m.DETR(m.DETRConfig(3, image_size=16, backbone_width=4, d_model=16, n_heads=2, n_encoder_layers=1,
                                         n_decoder_layers=2, d_ff=32, n_queries=5, queries="anchor")),
             lambda: (torch.rand(B, 1, 16, 16),)),
    "CenterNet": (lambda: m.CenterNet(m.CenterNetConfig(3, image_size=16, backbone_width=4, head_width=8)),
                  lambda: (torch.rand(B, 1, 16, 16),)),
}


def as_tensor(out):
    """A model's output as one tensor: DETR's dict of predictions becomes its logits and boxes side by side,
    CenterNet's its heatmap, size and offset maps stacked on the channels."""
    if isinstance(out, dict) and "heatmap" in out:
        return torch.cat([out["heatmap"], out["size"], out["offset"]], dim=1)
    return torch.cat([out["logits"], out["boxes"]], dim=-1) if isinstance(out, dict) else out

# Runs in a fresh interpreter: import seqlab.models only, load every saved case, run it on its inputs.
LOAD_AND_RUN = """
import json, sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

torch.set_num_threads(int(sys.argv[2]))
from seqlab.models import MODEL_CLASSES, from_pretrained
from seqlab.models import LinearTextClassifier, PatchTransformer, TransformerClassifier, VisionTransformer

report = {"registered": sorted(MODEL_CLASSES)}
for case in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    model = from_pretrained(case).eval()
    inputs = load_file(str(case / "inputs.safetensors"))
    with torch.no_grad():
        out = model(*[inputs[str(i)] for i in range(len(inputs))])
    if isinstance(out, dict) and "heatmap" in out:  # CenterNet: its maps stacked, as as_tensor in the test
        out = torch.cat([out["heatmap"], out["size"], out["offset"]], dim=1)
    elif isinstance(out, dict):  # DETR: logits and boxes side by side, as as_tensor in the test
        out = torch.cat([out["logits"], out["boxes"]], dim=-1)
    save_file({"out": out.contiguous()}, str(case / "out.safetensors"))
    report[case.name] = {"class": type(model).__name__, "config": asdict(model.config)}
print(json.dumps(report))
"""


def fresh_python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(seqlab.__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


def test_every_model_class_loads_in_a_fresh_process_with_identical_outputs(tmp_path):
    expected = {}
    for name, (make, make_inputs) in CASES.items():
        model = make().eval()
        with torch.no_grad():  # move every weight off its initial value (zero biases, ones in norms)
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        inputs = make_inputs()
        with torch.no_grad():
            expected[name] = as_tensor(model(*inputs))
        model.save_pretrained(tmp_path / name)
        save_file({str(i): x for i, x in enumerate(inputs)}, str(tmp_path / name / "inputs.safetensors"))
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved == {"model_class": name, **json.loads(json.dumps(asdict(model.config)))}

    run = fresh_python("-c", LOAD_AND_RUN, str(tmp_path), str(torch.get_num_threads()))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["registered"]) == set(CASES)  # a new model class needs a case here
    for name, want in expected.items():
        assert report[name]["class"] == name
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert {"model_class": name, **report[name]["config"]} == saved
        got = load_file(str(tmp_path / name / "out.safetensors"))["out"]
        assert torch.equal(got, want), f"{name}: outputs differ after loading, max {(got - want).abs().max()}"


def saved_lm(directory: Path) -> dict:
    model = m.TransformerLM(m.TransformerLMConfig(17, d_model=16, n_heads=2, n_layers=1, max_len=8))
    model.save_pretrained(directory)
    return json.loads((directory / "config.json").read_text())


def test_config_json_is_written_one_key_a_line_indented_by_two_spaces(tmp_path):
    # a config.json is read and diffed by people: json.dumps(indent=2) of the same values, key order kept
    config = saved_lm(tmp_path)
    text = (tmp_path / "config.json").read_text()
    assert text == json.dumps(config, indent=2)
    assert text.startswith('{\n  "model_class": "TransformerLM",\n  "vocab_size": 17,\n')


def rewrite(directory: Path, config: dict) -> None:
    (directory / "config.json").write_text(json.dumps(config))


def test_unknown_model_class_is_refused_naming_the_file(tmp_path):
    config = saved_lm(tmp_path)
    rewrite(tmp_path, {**config, "model_class": "GPT5"})
    with pytest.raises(UserError, match=r"config\.json is damaged \(unknown model_class 'GPT5'"):
        m.from_pretrained(tmp_path)


def test_unknown_and_missing_keys_are_refused_naming_the_file_and_the_key(tmp_path):
    config = saved_lm(tmp_path)
    rewrite(tmp_path, {**config, "d_modle": 16})
    with pytest.raises(UserError, match=r"config\.json is damaged \(unknown key 'd_modle' for TransformerLMConfig"):
        m.from_pretrained(tmp_path)
    del config["vocab_size"]  # a key without a default
    rewrite(tmp_path, config)
    with pytest.raises(UserError, match=r"config\.json is damaged \(missing key 'vocab_size' for TransformerLMConfig"):
        m.from_pretrained(tmp_path)


def test_a_config_too_large_to_build_is_refused_naming_the_file(tmp_path):
    config = saved_lm(tmp_path)
    rewrite(tmp_path, {**config, "vocab_size": 10**12})  # terabytes of embedding: the allocation fails
    with pytest.raises(UserError, match=r"config\.json is damaged \(describes a model too large to build"):
        m.from_pretrained(tmp_path)


def test_an_unknown_key_error_lists_the_config_fields_comma_separated(tmp_path):
    config = saved_lm(tmp_path)
    rewrite(tmp_path, {**config, "d_modle": 16})
    keys = ", ".join(f.name for f in fields(m.TransformerLMConfig)[:5])  # the message is cut after ~200 characters
    assert keys == "vocab_size, d_model, n_heads, n_layers, d_ff"
    with pytest.raises(UserError, match=re.escape(f"(its keys: {keys}, ")):
        m.from_pretrained(tmp_path)


@pytest.mark.parametrize("make, added_later, inputs", [
    (lambda: m.Transformer(m.TransformerConfig(20, 20, d_model=16, n_heads=2, n_layers=1, d_ff=32)),
     ["src_embedding_scale", "src_embedding_norm", "max_relative_position"],
     lambda: (torch.randint(4, 20, (2, 5)), torch.randint(4, 20, (2, 4)))),
    (lambda: m.TransformerClassifier(m.TransformerClassifierConfig(20, 3, d_model=16, n_heads=2, n_layers=1, d_ff=32)),
     ["causal", "embedding_norm", "max_relative_position"], lambda: (torch.randint(4, 20, (2, 5)),)),
])
def test_a_run_saved_before_a_setting_was_added_loads_and_computes_the_same(tmp_path, make, added_later, inputs):
    """config.json written before these settings existed: each missing one takes its default, which
    computes what the model did then (the outputs equal a model built with the defaults)."""
    torch.manual_seed(0)
    model = make().eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in added_later:
        assert key in config
        del config[key]
    rewrite(tmp_path, config)
    loaded = m.from_pretrained(tmp_path).eval()
    x = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(*x), model(*x))


def test_a_model_saved_before_config_classes_still_loads(tmp_path):
    # config.json as the keyword-argument models wrote it (the keys are the config's fields).
    old = {"model_class": "ConvClassifier", "vocab_size": 30, "n_classes": 3, "d_model": 8, "widths": [2, 3],
           "n_filters": 4, "dropout": 0.5, "pad_id": 0}
    model = m.ConvClassifier(m.ConvClassifierConfig(30, 3, d_model=8, widths=(2, 3), n_filters=4)).eval()
    save_model(model, str(tmp_path / "model.safetensors"))
    rewrite(tmp_path, old)
    loaded = m.from_pretrained(tmp_path).eval()
    assert loaded.config == m.ConvClassifierConfig(30, 3, d_model=8, widths=(2, 3), n_filters=4)
    ids = tokens(30, 7)
    assert torch.equal(loaded(ids), model(ids))


def test_from_pretrained_of_one_class_refuses_another(tmp_path):
    saved_lm(tmp_path)
    with pytest.raises(ValueError, match="holds a TransformerLM, not a RecurrentLM"):
        m.RecurrentLM.from_pretrained(tmp_path)


def test_register_takes_a_class_whose_config_class_is_a_dataclass_and_refuses_others(tmp_path):
    @dataclass
    class TinyConfig:
        width: int = 2

    class Tiny(m.pretrained.PretrainedModel):
        config_class = TinyConfig

        def __init__(self, config: TinyConfig) -> None:
            super().__init__()
            self.config = config
            self.linear = torch.nn.Linear(config.width, 1)

    try:
        assert m.pretrained.register(Tiny) is Tiny and m.MODEL_CLASSES["Tiny"] is Tiny
        model = Tiny(TinyConfig(3))
        model.save_pretrained(tmp_path)
        loaded = m.from_pretrained(tmp_path)
        assert type(loaded) is Tiny and loaded.config == TinyConfig(3)
        assert torch.equal(loaded.linear.weight, model.linear.weight)
    finally:
        m.MODEL_CLASSES.pop("Tiny", None)
    for config_class in (None, dict, TinyConfig()):  # none; a class, not a dataclass; a dataclass instance
        bad = type("Bad", (torch.nn.Module,), {"config_class": config_class})
        with pytest.raises(TypeError, match=r"^Bad\.config_class must be a dataclass$"):
            m.pretrained.register(bad)
        assert "Bad" not in m.MODEL_CLASSES


@pytest.mark.parametrize("config", [{"vocab_size": 17}, {"model_class": 3}, [1, 2]])
def test_a_config_without_a_model_class_is_refused_naming_the_file(tmp_path, config):
    saved_lm(tmp_path)
    rewrite(tmp_path, config)
    path = tmp_path / "config.json"
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))} is damaged \(not an object with a model_class\);") \
            as error:
        m.from_pretrained(tmp_path)
    assert error.value.path == path


def test_a_run_directory_loads_its_best_checkpoint(tmp_path):
    """A run writes run.json beside checkpoints/best, a save_pretrained directory."""
    torch.manual_seed(0)
    best = m.TransformerLM(m.TransformerLMConfig(17, d_model=16, n_heads=2, n_layers=1, max_len=8))
    best.save_pretrained(tmp_path / "checkpoints" / "best")
    (tmp_path / "run.json").write_text("{}")
    loaded = m.from_pretrained(tmp_path)
    assert loaded.config == best.config
    assert loaded.state_dict().keys() == best.state_dict().keys()
    assert all(torch.equal(t, loaded.state_dict()[name]) for name, t in best.state_dict().items())
    # A directory with a config.json of its own is a save_pretrained directory, run.json or not.
    saved_lm(tmp_path)
    m.RecurrentLM(m.RecurrentLMConfig(17, d_model=8)).save_pretrained(tmp_path / "checkpoints" / "best")
    assert type(m.from_pretrained(tmp_path)) is m.TransformerLM


def test_a_directory_without_a_config_is_refused_naming_its_config_file(tmp_path):
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path / 'config.json'))} is missing"):
        m.from_pretrained(tmp_path)


def test_unknown_model_class_error_lists_the_known_ones(tmp_path):
    rewrite(tmp_path, {**saved_lm(tmp_path), "model_class": "GPT5"})
    known = r"\(known: .*\bConvClassifier, ConvForecaster, ConvSeq2Seq, CovariateForecaster"
    with pytest.raises(UserError, match=known):
        m.from_pretrained(tmp_path)


def test_weights_that_do_not_fit_the_config_are_refused_naming_the_weights_file(tmp_path):
    saved_lm(tmp_path)
    other = m.TransformerLM(m.TransformerLMConfig(17, d_model=8, n_heads=2, n_layers=1, max_len=8))
    save_model(other, str(tmp_path / "model.safetensors"))
    weights = tmp_path / "model.safetensors"
    with pytest.raises(UserError, match=rf"^{re.escape(str(weights))} is damaged \(its tensors do not match "
                                        r"config\.json: ") as error:
        m.from_pretrained(tmp_path)
    assert error.value.path == weights
