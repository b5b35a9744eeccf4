"""Typed configs: overrides are coerced to the field's type, and a value of the wrong shape or range
is a ConfigError naming the key, never a traceback further down."""

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
