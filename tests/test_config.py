"""Typed configs: overrides are coerced to the field's type, and a value of the wrong shape or range
is a ConfigError naming the key, never a traceback further down."""

import re

import pytest

from seqlab.config import load_config
from seqlab.errors import ConfigError
from seqlab.train.config import TrainConfig


def test_a_fixed_length_tuple_is_coerced_and_checked():
    assert load_config(TrainConfig, None, ["betas=[0.8, 0.9]"]).betas == (0.8, 0.9)
    with pytest.raises(ConfigError, match=r"betas must be a list of 2 values; got \[0.9\]"):
        load_config(TrainConfig, None, ["betas=[0.9]"])
    with pytest.raises(ConfigError, match=r"betas must both be in \[0, 1\)"):
        load_config(TrainConfig, None, ["betas=[0.9, 1.5]"])


def test_wrong_types_name_the_key():
    with pytest.raises(ConfigError, match="batch_size must be an int; got 1.5"):
        load_config(TrainConfig, None, ["batch_size=1.5"])
    with pytest.raises(ConfigError, match="lr must be a float; got 'fast'"):
        load_config(TrainConfig, None, ["lr='fast'"])
    assert load_config(TrainConfig, None, ["lr=1"]).lr == 1.0  # an int where a float goes is fine


def test_a_config_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows editors start UTF-8 files with a byte-order mark, which tomllib calls an invalid statement."""
    path = tmp_path / "mine.toml"
    path.write_bytes("\ufefflr = 0.01\nbatch_size = 7\n".encode("utf-8"))
    config = load_config(TrainConfig, str(path))
    assert (config.lr, config.batch_size) == (0.01, 7)


@pytest.mark.parametrize("task, override, expected", [
    ("forecast", "model.kernel_size=0", "model.kernel_size must be at least 1; got 0"),  # a torch error deep in a step
    ("forecast", "model.kernel_size=-3", "model.kernel_size must be at least 1"),
    ("classify", "model.widths=[]", "model.widths needs at least one width"),  # max() of an empty list
    ("classify", "model.word2vec_epochs=0", "model.word2vec_epochs must be at least 1"),  # gensim's ValueError
    # the validation text was said to be too short, and the fixes suggested did not help
    ("lm", "data.eval_tokens=5", "data.eval_tokens=5 is less than one block"),
    ("mlm", "data.eval_tokens=5", "data.eval_tokens=5 is less than one block"),
])
def test_a_size_that_crashed_inside_a_library_is_named(task, override, expected):
    from seqlab.tasks import task as registry

    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(registry.get(task).config_class, None, [override])


def test_a_folder_given_as_the_config_is_named_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; --config takes a TOML file"):  # was "not found"
        load_config(TrainConfig, str(tmp_path))
