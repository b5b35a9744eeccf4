"""The Trainer's clock under a time budget: the seconds the schedule reads and when the budget is spent —
one process's own clock, or on several ranks the main rank's (through ``parallel.on_main``)."""

import pytest

from test_engine import make_trainer  # pytest puts this directory on sys.path


class Clock:
    """Moves by ``step`` seconds at every reading (by none unless told: set ``now`` to move it by hand)."""

    def __init__(self, start: float = 0.0, step: float = 0.0) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now


class Rank:
    """A stand-in for one rank of several processes: ``on_main(work)`` runs ``work`` on the main rank and
    gives every rank the main rank's result (``main_result`` on the others, as a broadcast would)."""

    def __init__(self, is_main: bool, main_result=None, world: int = 2) -> None:
        self.is_main, self.world, self.main_result = is_main, world, main_result

    def on_main(self, work):
        return work() if self.is_main else self.main_result


def trainer(tmp_path, clock, **settings):
    return make_trainer(tmp_path, clock=clock, **settings)


def test_before_training_the_schedule_has_spent_no_time(tmp_path):
    """The first rate is set when the schedule is built, before any training: 0 s spent, so it is the
    warmup's first rate, not one further along the budget."""
    t = trainer(tmp_path, Clock(50.0), schedule="constant", warmup_steps=4, lr=1e-3, max_steps=100, max_time=10.0)
    assert t._elapsed() == 0.0
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 1 / 4)


def test_the_schedule_reads_the_clock_once_a_step(tmp_path):
    clock = Clock(12.0, step=1.0)  # a different reading every time
    t = trainer(tmp_path, clock, max_time=100.0)
    t._segment_start = 5.0
    assert t._elapsed() == 7.0  # 12 - 5
    assert t._elapsed() == 7.0  # the same step: the same value (every parameter group gets it)
    t.schedule.last_epoch += 1
    assert t._elapsed() == 8.0  # the next step reads the clock again: 13 - 5


def test_on_several_ranks_the_schedule_reads_the_main_ranks_clock(tmp_path):
    t = trainer(tmp_path, Clock(12.0), max_time=100.0)
    t._segment_start = 5.0
    t.parallel = Rank(is_main=True)
    assert t._elapsed() == 7.0
    t = trainer(tmp_path, Clock(12.0), max_time=100.0)
    t._segment_start = 5.0
    t.parallel = Rank(is_main=False, main_result=3.5)  # this rank's clock says 7 s, the main rank's 3.5 s
    assert t._elapsed() == 3.5


@pytest.mark.parametrize("now, expected", [(10.9, False), (11.0, True), (12.0, True)])
def test_the_budget_is_spent_once_max_time_has_passed_since_the_segment_began(tmp_path, now, expected):
    t = trainer(tmp_path, Clock(now), max_time=6.0)
    assert t._out_of_time(5.0) is expected


def test_on_several_ranks_the_main_ranks_clock_decides_the_budget(tmp_path):
    t = trainer(tmp_path, Clock(12.0), max_time=6.0)
    t.parallel = Rank(is_main=True)
    assert t._out_of_time(5.0) is True and t._out_of_time(7.0) is False
    t.parallel = Rank(is_main=False, main_result=False)  # late here (12 - 5 >= 6), not on the main rank
    assert t._out_of_time(5.0) is False
    t.parallel = Rank(is_main=False, main_result=True)
    assert t._out_of_time(7.0) is True
