"""keep_rows_until: a resumed run's ``metrics.jsonl`` keeps the rows up to its checkpoint's step."""

from seqlab.train.loop import keep_rows_until


def test_rows_after_the_step_and_broken_lines_go_wherever_they_are(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "train_loss": 2.5}\n'
                    '{"step": 2, "train_lo\n'  # cut short by a crash, in the middle of the file
                    '[1, 2]\n'
                    '{"train_loss": 1.0}\n'
                    '{"step": "3"}\n'
                    '{"step": 3, "val_loss": 2.0}\n'
                    '{"step": 4, "train_loss": 1.5}\n'
                    '{"step": 5, "train_lo', encoding="utf-8")  # and at its end
    keep_rows_until(path, 3)
    assert path.read_text(encoding="utf-8") == '{"step": 1, "train_loss": 2.5}\n{"step": 3, "val_loss": 2.0}\n'


def test_the_file_is_read_and_written_as_utf8_whatever_the_locale(tmp_path, ascii_locale):
    path = tmp_path / "metrics.jsonl"
    rows = '{"step": 1, "note": "précis"}\n{"step": 2, "note": "naïve"}\n'
    path.write_bytes(rows.encode("utf-8"))
    with ascii_locale():
        keep_rows_until(path, 1)
    assert path.read_bytes() == '{"step": 1, "note": "précis"}\n'.encode("utf-8")
