"""Reading a checkpoint back: every damaged file named, with what is wrong with it."""

import json
import pickle
import random
import re
import warnings

import numpy as np
import pytest
import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file

from seqlab.errors import DamagedFileError, UserError
from seqlab.models import Transformer, TransformerConfig
from seqlab.train import checkpoint


def small_model(**overrides):
    settings = dict(d_model=8, n_heads=2, n_layers=1, d_ff=16)
    settings.update(overrides)
    return Transformer(TransformerConfig(8, 8, **settings))


def save_sharded(directory, state):
    """``state`` written by torch.distributed.checkpoint, as a multi-process run writes its training
    state (here from one process, which DCP allows with a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=str(directory))


def sharded_state():
    # Each tensor is one item of the .distcp file, 10 float32s + a header: together well over 1,000 bytes.
    return {"a": torch.arange(10.0), "b": torch.ones(10)}


def distcp_end(directory):
    """The .distcp file and the byte its last item ends at, read from the files, not from the checker."""
    (data,) = [p for p in directory.iterdir() if p.suffix == ".distcp"]
    return data, data.stat().st_size


def test_an_intact_sharded_training_state_passes(tmp_path):
    save_sharded(tmp_path, sharded_state())
    checkpoint.check_training_state(tmp_path)
    checkpoint.check_training_state(str(tmp_path))  # a str is a path too


def test_a_truncated_distcp_file_is_named_with_its_sizes(tmp_path):
    save_sharded(tmp_path, sharded_state())
    data, size = distcp_end(tmp_path)
    data.write_bytes(data.read_bytes()[:-1])  # one byte short: only the last item is cut
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.check_training_state(tmp_path)
    assert caught.value.path == data
    assert caught.value.reason == f"truncated: {size - 1:,} of {size:,} bytes"
    assert size >= 1000 and "," in caught.value.reason


def test_the_furthest_item_counts_whatever_order_the_metadata_lists_them_in(tmp_path):
    """Metadata merged from several ranks need not list a file's items by offset: the file must reach
    the end of the furthest one, not of the one listed last."""
    save_sharded(tmp_path, sharded_state())
    meta_path = tmp_path / ".metadata"
    metadata = pickle.loads(meta_path.read_bytes())
    items = sorted(metadata.storage_data.items(), key=lambda kv: kv[1].offset, reverse=True)
    metadata.storage_data = dict(items)
    meta_path.write_bytes(pickle.dumps(metadata))
    first_end = items[-1][1].offset + items[-1][1].length
    data, size = distcp_end(tmp_path)
    assert first_end < size
    checkpoint.check_training_state(tmp_path)  # still intact after the reordering
    data.write_bytes(data.read_bytes()[:first_end + 1])
    with pytest.raises(DamagedFileError, match=re.escape(f"truncated: {first_end + 1:,} of {size:,} bytes")):
        checkpoint.check_training_state(tmp_path)


def test_a_missing_distcp_file_is_named(tmp_path):
    save_sharded(tmp_path, sharded_state())
    data, _ = distcp_end(tmp_path)
    data.unlink()
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.check_training_state(tmp_path)
    assert caught.value.path == data and caught.value.reason == "missing"


@pytest.mark.parametrize("cut, error", [(100, "UnpicklingError"), (0, "EOFError")])
def test_a_damaged_metadata_file_is_named_with_the_error(tmp_path, cut, error):
    save_sharded(tmp_path, sharded_state())
    meta_path = tmp_path / ".metadata"
    meta_path.write_bytes(meta_path.read_bytes()[:cut])
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.check_training_state(tmp_path)
    assert caught.value.path == meta_path
    assert caught.value.reason.startswith(f"{error}: ")


def whole_checkpoint(directory, sharded=False):
    checkpoint.save_checkpoint(directory, small_model(), {"step": 3})
    if sharded:
        save_sharded(directory / checkpoint.TRAINING_STATE, sharded_state())
    return directory


def test_check_checkpoint_reads_a_sharded_training_state(tmp_path):
    directory = whole_checkpoint(tmp_path / "last", sharded=True)
    checkpoint.check_checkpoint(directory)
    data, _ = distcp_end(directory / checkpoint.TRAINING_STATE)
    data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.check_checkpoint(directory)
    assert caught.value.path == data and caught.value.reason.startswith("truncated: 10 of ")


@pytest.mark.parametrize("config", [{"d_model": 8}, [1, 2], "model_class"])
def test_a_config_without_a_model_class_is_named(tmp_path, config):
    directory = whole_checkpoint(tmp_path / "last")
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.check_checkpoint(directory)
    assert caught.value.path == directory / "config.json" and caught.value.reason == "no model_class"


def test_a_setting_the_model_no_longer_has_is_a_difference(tmp_path):
    directory = whole_checkpoint(tmp_path / "last")
    config = json.loads((directory / "config.json").read_text())
    config["retired_setting"] = 5
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=re.escape("(retired_setting: checkpoint 5 vs now None)")):
        checkpoint.check_compatible(directory, small_model())


def test_every_difference_is_shown_with_both_values(tmp_path):
    directory = whole_checkpoint(tmp_path / "last")
    expected = "(d_ff: checkpoint 16 vs now 32, d_model: checkpoint 8 vs now 16)"
    with pytest.raises(UserError, match=re.escape(expected)):
        checkpoint.check_compatible(directory, small_model(d_model=16, d_ff=32))
    checkpoint.check_compatible(directory, small_model())  # the same config: no error


def test_a_forecaster_resumes_with_or_without_its_calibration(tmp_path):
    # A checkpoint saved before forecasters had a calibration (a field with a default factory), or a
    # calibrated one, is the same model: its offsets hold no weight. Any other setting still differs.
    from seqlab.models import forecasters as fm
    from seqlab.models.covariate_forecaster import CovariateForecaster

    def forecaster(calibration=(), d_model=8):
        base = fm.PatchTransformer(fm.PatchTransformerConfig(2, 16, 4, d_model=d_model, n_heads=2, n_layers=1,
                                                             d_ff=16, patch_len=4, stride=4, quantiles=(0.1, 0.9),
                                                             calibration=list(calibration)))
        return CovariateForecaster.around(base, 1, 0)

    forecaster().save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["calibration"], config["base"]["calibration"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    checkpoint.check_compatible(tmp_path / "old", forecaster())
    calibrated = forecaster()
    calibrated.config.calibration = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0]]
    calibrated.save_pretrained(tmp_path / "calibrated")
    checkpoint.check_compatible(tmp_path / "calibrated", forecaster())
    with pytest.raises(UserError, match="base: checkpoint"):
        checkpoint.check_compatible(tmp_path / "old", forecaster(d_model=16))


def test_a_damaged_training_state_is_named(tmp_path):
    directory = whole_checkpoint(tmp_path / "last")
    checkpoint.save_state(directory, {"weight": torch.ones(4)}, checkpoint.TRAINING_STATE)
    checkpoint.check_checkpoint(directory)
    data = directory / "training_state.safetensors"
    data.write_bytes(data.read_bytes()[:20])
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.check_checkpoint(directory)
    assert caught.value.path == data


@pytest.mark.parametrize("name", ["state", "training_state"])
def test_a_reference_to_a_tensor_the_file_lacks_is_named(tmp_path, name):
    checkpoint.save_state(tmp_path, {"a": torch.ones(2)}, name)
    (tmp_path / f"{name}.json").write_text(json.dumps({"a": {"__tensor__": "t7"}}))
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.load_state(tmp_path, name)
    assert caught.value.path == tmp_path / f"{name}.json"
    assert caught.value.reason.startswith(f"it names a tensor that {name}.safetensors lacks: ")


def test_tensors_inside_lists_and_tuples_come_back(tmp_path):
    a, b = torch.arange(3.0), torch.ones(2, 2)
    checkpoint.save_state(tmp_path, {"xs": [a, (b, 5)], "n": [1, [2]]})
    state = checkpoint.load_state(tmp_path)
    (got_a, (got_b, five)) = state["xs"]
    assert torch.equal(got_a, a) and torch.equal(got_b, b) and five == 5 and state["n"] == [1, [2]]


# --- which checkpoint a run resumes from --------------------------------------------------------

CANDIDATES = ["last", ".last.old", "best", ".best.old"]


def no_model_class(directory):
    (directory / "config.json").write_text(json.dumps({"d_model": 8}))


@pytest.mark.parametrize("name", CANDIDATES)
def test_the_only_checkpoint_is_resumed_from(tmp_path, name):
    whole_checkpoint(tmp_path / name)
    assert checkpoint.resumable_checkpoint(tmp_path) == (tmp_path / name, [])


def test_the_newest_intact_one_wins(tmp_path):
    for name in CANDIDATES[1:]:
        whole_checkpoint(tmp_path / name)
    assert checkpoint.resumable_checkpoint(str(tmp_path)) == (tmp_path / ".last.old", [])


def test_damaged_ones_are_passed_over_with_why(tmp_path):
    for name in CANDIDATES:
        whole_checkpoint(tmp_path / name)
    no_model_class(tmp_path / "last")
    (tmp_path / ".last.old" / "config.json").unlink()
    assert checkpoint.resumable_checkpoint(tmp_path) == (tmp_path / "best", [
        f"{tmp_path / 'last' / 'config.json'} is damaged (no model_class)",
        f"{tmp_path / '.last.old' / 'config.json'} is missing; the checkpoint is incomplete: train the run again"])


@pytest.mark.parametrize("newest", ["last", "best"])
def test_when_all_are_damaged_the_newests_error_is_raised(tmp_path, newest):
    whole_checkpoint(tmp_path / newest)
    whole_checkpoint(tmp_path / ".best.old")
    no_model_class(tmp_path / newest)
    (tmp_path / ".best.old" / "config.json").unlink()
    with pytest.raises(DamagedFileError) as caught:
        checkpoint.resumable_checkpoint(tmp_path)
    assert caught.value.path == tmp_path / newest / "config.json"


def test_without_checkpoints_there_is_nothing_to_resume(tmp_path):
    assert checkpoint.resumable_checkpoint(tmp_path) == (None, [])
    assert checkpoint.resumable_checkpoint(tmp_path / "never made") == (None, [])


# --- random number generators -------------------------------------------------------------------

@pytest.fixture
def cuda_generators(monkeypatch):
    """What set_rng_state hands torch's CUDA generators, recorded instead of set."""
    handed = []
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", handed.append)
    return handed


@pytest.mark.parametrize("available", [True, False])
@pytest.mark.parametrize("saved", [True, False])
def test_the_cuda_generators_are_set_only_when_saved_and_present(monkeypatch, cuda_generators, available, saved):
    state = checkpoint.rng_state()
    state.pop("cuda", None)
    cuda_states = [torch.arange(4, dtype=torch.uint8)]
    if saved:
        state["cuda"] = cuda_states
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    checkpoint.set_rng_state(state)
    assert cuda_generators == ([cuda_states] if saved and available else [])


def test_rng_state_saves_the_cuda_generators_when_there_are_some(monkeypatch):
    cuda_states = [torch.arange(4, dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_states)
    assert checkpoint.rng_state()["cuda"] is cuda_states


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_rng_state_set_back_repeats_every_generators_draws():
    saved = checkpoint.rng_state()
    first = draws()
    checkpoint.set_rng_state(saved)
    second = draws()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


@pytest.mark.parametrize("seed", [7, 2**32 + 7])
def test_seed_everything_seeds_python_numpy_and_torch(seed):
    """As each library seeds its own generator; NumPy's takes seeds below 2^32, so modulo that."""
    checkpoint.seed_everything(seed)
    got = draws()
    assert got[0] == random.Random(seed).random()
    assert got[1] == float(np.random.RandomState(seed % 2**32).rand())
    assert torch.equal(got[2], torch.rand(3, generator=torch.Generator().manual_seed(seed)))


# --- nested state <-> (JSON, tensors) -------------------------------------------------------------

def test_a_tensor_met_twice_anywhere_is_stored_once():
    """A tied weight in a dict, a list, a tuple and an int-keyed dict: one tensor, four references."""
    shared, other = torch.arange(4.0), torch.ones(2)
    tensors = {}
    tree = checkpoint.flatten_state({"d": {"w": shared}, "l": [shared], "t": (shared, other), "i": {0: shared}},
                                    tensors)
    assert list(tensors) == ["t0", "t1"] and torch.equal(tensors["t0"], shared) and torch.equal(tensors["t1"], other)
    assert tree == {"d": {"w": {"__tensor__": "t0"}}, "l": [{"__tensor__": "t0"}],
                    "t": {"__tuple__": [{"__tensor__": "t0"}, {"__tensor__": "t1"}]},
                    "i": {"__items__": [[0, {"__tensor__": "t0"}]]}}
    json.dumps(tree)  # the rest is JSON


def test_views_of_one_storage_are_told_apart():
    base = torch.arange(6.0)
    tensors = {}
    checkpoint.flatten_state([base[:3], base[3:], base[:3].view(3, 1)], tensors)
    assert [t.tolist() for t in tensors.values()] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [[0.0], [1.0], [2.0]]]


def test_every_kind_of_value_comes_back_from_the_files(tmp_path):
    state = {"none": None, "flag": True, "n": 3, "x": 0.5, "s": "text", "np_float": np.float32(1.5),
             "array": np.arange(3, dtype=np.int64), "by_int": {1: "a", 2: [torch.ones(2)]}, "pair": (1, "b")}
    checkpoint.save_state(tmp_path, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.safetensors"]
    got = checkpoint.load_state(tmp_path)
    assert isinstance(got["array"], np.ndarray) and got["array"].tolist() == [0, 1, 2]
    assert got["np_float"] == 1.5 and type(got["np_float"]) is float
    assert torch.equal(got["by_int"][2][0], torch.ones(2)) and list(got["by_int"]) == [1, 2]
    assert got["pair"] == (1, "b") and isinstance(got["pair"], tuple)
    assert {k: got[k] for k in ("none", "flag", "n", "x", "s")} == {"none": None, "flag": True, "n": 3, "x": 0.5,
                                                                    "s": "text"}


def test_a_value_that_is_no_json_is_refused_with_its_type():
    with pytest.raises(TypeError, match="^cannot checkpoint a value of type set$"):
        checkpoint.flatten_state({"a": {1, 2}}, {})


# --- whole checkpoints: staging, swapping in, falling back ---------------------------------------

def test_staging_is_a_fresh_empty_directory_beside_the_checkpoint(tmp_path):
    directory = tmp_path / "runs" / "last"  # its parent not made yet
    staging = checkpoint.staging_dir(str(directory))
    assert staging == tmp_path / "runs" / ".last.staging" and staging.is_dir()
    (staging / "leftover").write_text("from a crashed save")
    assert checkpoint.staging_dir(directory) == staging and list(staging.iterdir()) == []


def test_swap_in_replaces_the_directory_and_leaves_nothing_behind(tmp_path):
    directory = tmp_path / "last"
    for name, text in (("last", "old"), (".last.old", "older"), (".last.staging", "new")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(text)
    checkpoint.swap_in(tmp_path / ".last.staging", str(directory))
    assert (directory / "f").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_swap_in_with_no_directory_yet(tmp_path):
    (tmp_path / ".last.staging").mkdir()
    checkpoint.swap_in(tmp_path / ".last.staging", tmp_path / "last")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_save_checkpoint_writes_the_weights_config_and_state(tmp_path):
    model = small_model()
    checkpoint.save_checkpoint(tmp_path / "last", model, {"step": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert checkpoint.load_state(tmp_path / "last") == {"step": 3}
    assert json.loads((tmp_path / "last" / "config.json").read_text())["model_class"] == "Transformer"
    weights = load_file(str(tmp_path / "last" / "model.safetensors"))
    assert all(torch.equal(weights[name], p) for name, p in model.state_dict().items() if name in weights)
    assert len(weights) > 0


def test_existing_checkpoint_falls_back_to_the_previous_version(tmp_path):
    directory = tmp_path / "last"
    assert checkpoint.existing_checkpoint(directory) is None
    whole_checkpoint(tmp_path / ".last.old")
    assert checkpoint.existing_checkpoint(str(directory)) == tmp_path / ".last.old"
    whole_checkpoint(directory)
    assert checkpoint.existing_checkpoint(directory) == directory


@pytest.mark.parametrize("keep", ["model.safetensors", "state.json"])
def test_a_checkpoint_missing_its_weights_or_state_does_not_exist(tmp_path, keep):
    directory = whole_checkpoint(tmp_path / "last")
    for name in ("model.safetensors", "state.json"):
        if name != keep:
            (directory / name).unlink()
    assert checkpoint.existing_checkpoint(directory) is None
