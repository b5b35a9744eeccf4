"""MetricsLog: one JSON line a row in ``metrics.jsonl`` (and its numbers in TensorBoard when asked), on the
main rank only; keep_rows_until: a resumed run's ``metrics.jsonl`` keeps the rows up to its checkpoint's step."""

import json

from seqlab.train.loop import MetricsLog, keep_rows_until

ROWS = '{"step": 1, "train_loss": 2.5}\n{"step": 2, "val_loss": 2.0}\n{"step": 3, "train_loss": 1.5}\n'


def test_a_log_appends_each_row_as_one_json_line_and_closes_its_file(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    log({"step": 1, "train_loss": 0.5, "note": "x"})
    log({"step": 2, "val_loss": 0.25})
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == \
        '{"step": 1, "train_loss": 0.5, "note": "x"}\n{"step": 2, "val_loss": 0.25}\n'  # flushed row by row
    log.close()
    assert log.file.closed and not (tmp_path / "tb").exists()


def test_a_fresh_log_appends_to_the_rows_already_there(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(ROWS, encoding="utf-8")
    log = MetricsLog(tmp_path, tensorboard=False)
    log({"step": 4})
    log.close()
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == ROWS + '{"step": 4}\n'


def test_a_resumed_log_drops_the_rows_after_its_step_first(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(ROWS, encoding="utf-8")
    log = MetricsLog(tmp_path, tensorboard=False, after_step=1)
    log({"step": 2, "val_loss": 1.0})
    log.close()
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == \
        '{"step": 1, "train_loss": 2.5}\n{"step": 2, "val_loss": 1.0}\n'


def test_a_log_on_another_rank_touches_no_file(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(ROWS, encoding="utf-8")
    log = MetricsLog(tmp_path, tensorboard=True, enabled=False, after_step=1)
    log({"step": 2, "val_loss": 1.0})
    log.close()
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == ROWS
    assert not (tmp_path / "tb").exists()
    MetricsLog(tmp_path / "none", tensorboard=False, enabled=False)({"step": 1})  # its directory need not exist


def scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_the_numbers_by_step_and_a_resumed_log_hides_the_steps_it_repeats(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=True)
    log({"step": 1, "train_loss": 0.5, "note": "not a number"})
    log({"step": 2, "train_loss": 0.25, "lr": 1})
    log({"step": 3, "train_loss": 0.125})
    log.close()
    assert log.writer.all_writers is None  # closed: its events are on disk
    assert scalars(tmp_path) == {"train_loss": [(1, 0.5), (2, 0.25), (3, 0.125)], "lr": [(2, 1.0)]}
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]

    resumed = MetricsLog(tmp_path, tensorboard=True, after_step=1)
    resumed({"step": 2, "train_loss": 0.75})
    resumed.close()
    assert scalars(tmp_path) == {"train_loss": [(1, 0.5), (2, 0.75)], "lr": []}  # purged from step 2 on


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
