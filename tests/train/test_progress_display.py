"""ProgressDisplay writes to the file it is given: a bar on a terminal, lines elsewhere."""

import io
import os

from seqlab.train.progress import ProgressDisplay

from test_trainer_clock import Clock  # pytest puts this directory on sys.path


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def show_steps(file, steps=3):
    clock = Clock()
    display = ProgressDisplay(total=steps, initial=0, enabled=True, clock=clock, file=file, every=30.0)
    for step in range(1, steps + 1):
        clock.now += 30.0  # a line's worth of seconds every step
        display.update(step, steps, loss_sum=2.0, tokens=1)
    return display  # open: tqdm's close disables the bar


def test_without_a_terminal_the_lines_go_to_the_given_file(capsys):
    file = io.StringIO()
    display = show_steps(file)
    assert display.lines and display.bar.disable
    display.close()
    assert file.getvalue().splitlines() == [f"step {s}/3  loss 2  30 s/step  ETA {eta}"
                                            for s, eta in ((1, "01:00"), (2, "00:30"), (3, "00:00"))]
    assert capsys.readouterr().err == ""


def test_on_a_terminal_a_bar_and_no_lines(capsys):
    file = Terminal()
    display = show_steps(file)
    assert not display.lines and not display.bar.disable
    display.close()
    shown = file.getvalue()
    assert "| 0/3 [" in shown and "\r" in shown  # tqdm's bar, drawn on the given file
    assert "ETA" not in shown and "s/step" not in shown  # and no lines
    assert capsys.readouterr().err == ""


class Writer:
    """A file with no ``isatty`` at all (a logging stream, a wrapper): not a terminal."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_a_file_without_isatty_gets_lines():
    file = Writer()
    display = show_steps(file, steps=1)
    assert display.lines and display.bar.disable
    display.close()
    assert file.text == "step 1/1  loss 2  30 s/step  ETA 00:00\n"


def test_turned_off_on_a_terminal_shows_nothing():
    file = Terminal()
    display = ProgressDisplay(total=3, initial=0, enabled=False, clock=Clock(), file=file)
    display.update(1, 3, loss_sum=2.0, tokens=1)
    display.close()
    assert not display.lines and display.bar.disable
    assert file.getvalue() == ""


def test_the_bar_counts_steps_from_the_resumed_one_and_is_cleared_at_the_end():
    file = Terminal()
    display = ProgressDisplay(total=5, initial=2, enabled=True, clock=Clock(), file=file)
    shown = file.getvalue()
    assert "| 2/5 [" in shown and "?step/s]" in shown  # tqdm's count and rate, in steps
    display.close()
    assert "\n" not in file.getvalue()  # not left on the screen: cleared by a carriage return
    assert file.getvalue().endswith("\r")


class ResizableTerminal(Terminal):
    def fileno(self) -> int:
        return 2


def test_the_bar_follows_the_terminals_width(monkeypatch):
    width = {"columns": 41}
    monkeypatch.setattr("os.get_terminal_size", lambda fd=None: os.terminal_size((width["columns"], 20)))
    file = ResizableTerminal()
    display = ProgressDisplay(total=3, initial=0, enabled=True, clock=Clock(), file=file)
    first = file.getvalue().split("\r")[-1]
    width["columns"] = 61  # the window is resized
    display.update(1, 3, loss_sum=2.0, tokens=1)
    display.bar.refresh()
    second = file.getvalue().split("\r")[-1]
    display.close()
    assert len(first) == 40 and len(second) == 60  # tqdm keeps the last column free


def lines_for(moves, every, total, loss_sum=2.0, tokens=1):
    """The lines written when the clock moves by ``moves[i]`` seconds before step i + 1."""
    clock, file = Clock(), io.StringIO()
    display = ProgressDisplay(total=total, initial=0, enabled=True, clock=clock, file=file, every=every)
    for step, move in enumerate(moves, start=1):
        clock.now += move
        display.update(step, total, loss_sum=loss_sum, tokens=tokens)
    display.close()
    return file.getvalue().splitlines()


def test_a_line_gives_the_mean_loss_per_item_over_its_window():
    """Two steps of 3 items summing to 6.0 and 9.0: (6 + 9) / 6 = 2.5 a item, at step 2 (20 s + 20 s)."""
    clock, file = Clock(), io.StringIO()
    display = ProgressDisplay(total=4, initial=0, enabled=True, clock=clock, file=file, every=30.0)
    for step, loss_sum in ((1, 6.0), (2, 9.0)):
        clock.now += 20.0
        display.update(step, 4, loss_sum=loss_sum, tokens=3)
    display.close()
    assert file.getvalue().splitlines() == ["step 2/4  loss 2.5  20 s/step  ETA 00:40"]


def test_one_step_a_second_or_more_is_shown_as_steps_a_second():
    assert lines_for([1.0], every=1.0, total=3) == ["step 1/3  loss 2  1 steps/s  ETA 00:02"]
    # 2 steps in 1.6 s: 1.25 steps/s; 2 steps left take 1.6 s, which tqdm shows as 00:01
    assert lines_for([0.8, 0.8], every=1.0, total=4) == ["step 2/4  loss 2  1.25 steps/s  ETA 00:01"]


def test_a_total_moved_by_a_time_budget_reaches_the_bar_and_the_lines():
    file = Terminal()
    display = ProgressDisplay(total=10, initial=0, enabled=True, clock=Clock(), file=file)
    display.update(1, 6, loss_sum=2.0, tokens=1)
    assert display.bar.total == 6
    display.bar.refresh()
    assert file.getvalue().split("\r")[-1].lstrip().startswith("17%") and "| 1/6 [" in file.getvalue()
    display.close()
    clock, file = Clock(), io.StringIO()
    display = ProgressDisplay(total=10, initial=0, enabled=True, clock=clock, file=file, every=30.0)
    clock.now = 30.0
    display.update(1, 2, loss_sum=2.0, tokens=1)
    assert display.bar.total == 2
    assert file.getvalue() == "step 1/2  loss 2  30 s/step  ETA 00:30\n"
