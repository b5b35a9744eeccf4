import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from seqlab.errors import UserError
from seqlab.train import threads


@pytest.mark.parametrize("cores, ranks, expected", [(16, 1, 16), (16, 2, 8), (16, 3, 5), (2, 4, 1), (1, 1, 1)])
def test_default_threads_share_the_cores_among_the_ranks(cores, ranks, expected):
    assert threads.default_threads(cores=cores, ranks=ranks) == expected


def test_default_threads_read_the_affinity_and_torchruns_local_world_size(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_threads() == 3
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert threads.default_threads() == 6


@pytest.fixture
def restore_threads():
    torch_threads = torch.get_num_threads()
    blas = {info["prefix"]: info["num_threads"] for info in threadpool_info()}
    yield
    torch.set_num_threads(torch_threads)
    threadpool_limits(limits=blas)


def test_set_threads_takes_effect_for_torch_and_blas(restore_threads):
    assert threads.set_threads(1) == 1
    assert torch.get_num_threads() == 1
    pools = threadpool_info()
    assert pools, "no BLAS/OpenMP pool found to limit"
    assert all(pool["num_threads"] == 1 for pool in pools)


def test_set_threads_refuses_zero_and_more_than_the_bound():
    for n in (0, threads.MAX_THREADS + 1):
        with pytest.raises(UserError, match=f"--threads must be between 1 and 1024; got {n}"):
            threads.set_threads(n)


def test_the_default_on_a_machine_of_more_cores_than_the_bound_is_the_bound(monkeypatch, restore_threads):
    asked = []
    monkeypatch.setattr(threads, "default_threads", lambda: 1152)  # not refused: no --threads was given
    monkeypatch.setattr(threads.torch, "set_num_threads", asked.append)
    monkeypatch.setattr(threads.torch, "set_num_interop_threads", asked.append)
    monkeypatch.setattr(threads, "threadpool_limits", lambda limits: asked.append(limits))
    assert threads.set_threads() == threads.MAX_THREADS and asked == [threads.MAX_THREADS] * 3


def test_busy_warning_when_the_load_fills_the_cores():
    assert threads.busy_warning(cores=2, load=1.5) is None
    line = threads.busy_warning(cores=2, load=2.0)
    assert line is not None and "\n" not in line and "load average 2.0 on 2 cores" in line


def test_warn_if_busy_prints_one_line_on_stderr(monkeypatch, capsys):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (64.0, 1.0, 1.0))
    threads.warn_if_busy()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "busy" in captured.err


def test_without_affinity_the_cpu_count_counts_and_none_means_one(monkeypatch):
    monkeypatch.delattr(threads.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 6)
    assert threads.available_cores() == 6
    monkeypatch.setattr(threads.os, "cpu_count", lambda: None)  # undeterminable
    assert threads.available_cores() == 1


def test_busy_warning_uses_the_cores_given_else_the_available_ones(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 1000)
    assert "on 2 cores" in threads.busy_warning(cores=2, load=2.0)
    assert threads.busy_warning(load=2.0) is None
    assert "on 1000 cores" in threads.busy_warning(load=1000.0)


def test_set_threads_sizes_the_inter_op_pool_and_blas_and_defaults_to_default_threads(monkeypatch, restore_threads):
    interop = []
    monkeypatch.setattr(threads.torch, "set_num_interop_threads", interop.append)
    monkeypatch.setattr(threads, "default_threads", lambda: 2)
    assert threads.set_threads() == 2
    assert interop == [2] and torch.get_num_threads() == 2
    assert all(pool["num_threads"] == 2 for pool in threadpool_info())
    assert threads.set_threads(1) == 1
    assert interop == [2, 1] and all(pool["num_threads"] == 1 for pool in threadpool_info())


def test_an_inter_op_pool_already_started_keeps_its_size(monkeypatch, restore_threads):
    def started(n):
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has started")

    monkeypatch.setattr(threads.torch, "set_num_interop_threads", started)
    assert threads.set_threads(1) == 1 and torch.get_num_threads() == 1
