"""The Trainer's evaluation: a larger value is better for a maximised metric and a smaller one for a
minimised one (a tie is neither), the evaluation runs on the model itself in the run's precision, and it
prints its figures (one line) only when progress is on."""

import torch

from test_engine import make_trainer  # pytest puts this directory on sys.path


def test_a_maximised_metric_improves_when_larger_a_minimised_one_when_smaller_a_tie_never(tmp_path):
    t = make_trainer(tmp_path)
    t.select, t.maximize = "accuracy", True
    t.progress.best = 0.5
    assert t._improved(0.6) and not t._improved(0.4) and not t._improved(0.5)
    t.maximize = False
    assert t._improved(0.4) and not t._improved(0.6) and not t._improved(0.5)


def test_evaluation_runs_on_the_model_in_the_runs_precision_and_prints_nothing_without_progress(tmp_path, capsys):
    t = make_trainer(tmp_path, precision="bf16")
    given, autocast = [], []
    parallel, evaluate = t.parallel, t.evaluate

    class Recording:  # the run's own parallel, noting what before_eval is given
        def __getattr__(self, name):
            return getattr(parallel, name)

        def before_eval(self, model):
            given.append(model)
            return parallel.before_eval(model)

    def noting_precision(model):
        autocast.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return evaluate(model)

    t.parallel, t.evaluate = Recording(), noting_precision
    t._evaluate(lambda row: None)
    assert given == [t.model]
    assert autocast == [torch.bfloat16]
    assert capsys.readouterr().out == ""  # progress is off in make_trainer


def test_with_progress_on_an_evaluation_prints_its_figures_on_one_line(tmp_path, capsys):
    t = make_trainer(tmp_path, progress=True, max_steps=8)
    t.evaluate = lambda model: {"val_loss": 1.23456, "accuracy": 0.5}
    t.progress.step = 4
    t._evaluate(lambda row: None)
    assert "step 4/8  val_loss 1.235  accuracy 0.5\n" in capsys.readouterr().out  # tqdm.write: 4 significant digits


def patient_run(tmp_path, patience, scores):
    from test_trainer_step import data, fit, tiny

    x, y = data(4)
    values = iter(scores)
    t = tiny(tmp_path, [{"x": x, "y": y}], evaluate=lambda m: {"val_loss": next(values)}, max_steps=len(scores),
             eval_every=1, log_every=100, patience=patience)
    return fit(t)


def test_patience_stops_the_run_after_that_many_evaluations_without_improvement(tmp_path):
    progress = patient_run(tmp_path, 2, [1.0, 2.0, 1.5, 0.5, 0.25, 0.1])
    assert (progress.step, progress.best_step, progress.bad_evals) == (3, 1, 2)
    assert progress.stopped == "early stopping: val_loss did not improve in 2 evaluations"
    assert (tmp_path / "checkpoints" / "last").is_dir()


def test_an_improvement_starts_the_count_again_and_patience_0_never_stops(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    progress = patient_run(tmp_path / "a", 2, [1.0, 2.0, 0.5, 0.75, 0.25, 0.3])
    assert (progress.step, progress.best_step, progress.bad_evals, progress.stopped) == (6, 5, 1, "")
    progress = patient_run(tmp_path / "b", 0, [1.0, 2.0, 3.0, 4.0])
    assert (progress.step, progress.best_step, progress.bad_evals, progress.stopped) == (4, 1, 3, "")
