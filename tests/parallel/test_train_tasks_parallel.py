"""translate, classify, forecast, vision, mlm and detect on 2 CPU ranks (torchrun, gloo): data parallel (DDP,
and FSDP2 for forecast) follows the one-process run with the same global batch — the same training loss
at every step, the same evaluations, the same final weights — and a run saved on one process count
resumes on another and ends where the uninterrupted run does (2 ranks -> 1 for translate and vision,
1 -> 2 under FSDP2 for forecast). detect has batch norm in its backbone and a set loss divided by the
batch's object count: both over the whole batch, not each rank's rows. One torchrun launch runs every
2-rank job, one after another."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import task_jobs

DEADLINE_S = 240
FSDP = ["parallel.dp_mode='fsdp'"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    task_jobs.write_series(root / "series.csv")
    task_jobs.write_text(root / "text.txt")
    one = {task: root / f"{task}-one" for task in task_jobs.MODULES}
    for task, run in one.items():  # the references: one process, uninterrupted
        task_jobs.run(task, run, root)
    task_jobs.run("forecast", root / "forecast-one-to-two", root, ["train.stop_at_step=6"])
    two = {task: root / f"{task}-two" for task in task_jobs.MODULES}
    jobs = [dict(task=task, run=str(run), data_dir=str(root), overrides=FSDP if task == "forecast" else [])
            for task, run in two.items()]
    jobs += [dict(task="translate", run=str(root / "translate-two-to-one"), data_dir=str(root),
                  overrides=["train.stop_at_step=6"]),
             dict(task="vision", run=str(root / "vision-two-to-one"), data_dir=str(root),
                  overrides=["train.stop_at_step=6"]),
             dict(task="forecast", run=str(root / "forecast-one-to-two"), data_dir=str(root),
                  overrides=[*FSDP, "train.stop_at_step=0"], resume=True)]
    (root / "jobs.json").write_text(json.dumps(jobs))
    here = Path(__file__).parent
    environment = {**os.environ, "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(here / "task_jobs.py"), str(root / "jobs.json")],
                          capture_output=True, text=True, timeout=DEADLINE_S, env=environment)
    assert done.returncode == 0, done.stderr[-5000:]
    for task in ("translate", "vision"):  # ... and the rest of the 2-rank runs on one process, here
        task_jobs.run(task, root / f"{task}-two-to-one", root, ["train.stop_at_step=0"], resume=True)
    return root


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_curves(run, reference, rtol=1e-5):
    """Every logged row — training loss each step, each evaluation — in the same order, equal."""
    for got, want in zip(rows(run), rows(reference), strict=True):
        assert got.keys() == want.keys() and got["step"] == want["step"], (got, want)
        for key in want.keys() - {"step", "tokens_per_s", "lr"}:
            assert got[key] == pytest.approx(want[key], rel=rtol), (key, got, want)


def assert_same_weights(run, reference, checkpoint="last"):
    weights, expected = (load_file(d / "checkpoints" / checkpoint / "model.safetensors") for d in (run, reference))
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        if name.endswith("w_k.bias"):  # zero true gradient, rounding noise scaled up by Adam: see the LM test
            continue
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("task", ["translate", "classify", "forecast", "vision", "mlm", "detect"])
def test_two_ranks_train_like_one_process(task, runs):
    two, one = runs / f"{task}-two", runs / f"{task}-one"
    assert_same_curves(two, one)
    assert_same_weights(two, one)
    assert_same_weights(two, one, "best")
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["processes"] == 2
    reference = json.loads((one / "metrics.json").read_text())
    for key, value in reference.items():
        if key.startswith(("test_", "val_", "bleu")) and isinstance(value, float):
            assert metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


@pytest.mark.timeout(400)
@pytest.mark.parametrize("task, run, form", [
    ("translate", "translate-two-to-one", "dcp"),
    ("vision", "vision-two-to-one", "dcp"),
    ("forecast", "forecast-one-to-two", "safetensors"),
])
def test_a_run_paused_on_one_process_count_resumes_on_another(task, run, form, runs):
    """Paused at step 6 (an evaluation step, so the resumed run logs exactly the uninterrupted rows)."""
    resumed, one = runs / run, runs / f"{task}-one"
    assert json.loads((resumed / "metrics.json").read_text())["steps"] == 12
    assert_same_curves(resumed, one)
    assert_same_weights(resumed, one)
    last = resumed / "checkpoints" / "last"
    # The last save was by the resuming side: DCP from 2 ranks, safetensors + JSON from one.
    assert (last / "training_state").is_dir() == (form == "safetensors")
    assert (last / "training_state.json").is_file() == (form == "dcp")


@pytest.mark.parametrize("arch", ["tfidf", "bow", "nbsvm"])
def test_linear_classifiers_refuse_several_processes_in_one_line(arch, tmp_path):
    from seqlab.errors import UserError
    from seqlab.parallel.runtime import SingleProcess
    from seqlab.tasks.classify import ClassifyConfig, ClassifyModelConfig, train

    config = ClassifyConfig(model=ClassifyModelConfig(arch=arch))
    config.check_layout(1)
    with pytest.raises(UserError) as refused:
        config.check_layout(2)
    message = str(refused.value)
    assert f"--model {arch}" in message and "one process" in message and "\n" not in message

    class TwoRanks(SingleProcess):  # what train sees on rank 0 of a 2-process job
        world = 2

    with pytest.raises(UserError, match="one process"):
        train(config, tmp_path, *task_jobs.labelled_texts(40), parallel=TwoRanks())
    assert not list(tmp_path.iterdir())  # refused before writing anything


@pytest.mark.parametrize("task", ["translate", "classify", "forecast", "vision", "mlm", "detect"])
def test_tasks_other_than_lm_take_data_parallel_only(task):
    from seqlab.config import load_config
    from seqlab.errors import ConfigError, UserError

    config_class = task_jobs.MODULES[task][1]
    with pytest.raises(ConfigError, match="data parallel only"):
        load_config(config_class, None, ["parallel.tp=2"])
    one_model = []
    if task == "forecast":  # its default, --model auto, trains its candidates on one process
        with pytest.raises(UserError, match="one process"):
            load_config(config_class, None, []).check_layout(2)
        one_model = ["model.arch='patch'"]
    config = load_config(config_class, None, ["train.batch_size=15", *one_model])
    with pytest.raises(UserError, match="must split evenly over 2 data-parallel"):
        config.check_layout(2)
    config.check_layout(1)
