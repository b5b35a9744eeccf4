"""ProgressDisplay writes to the file it is given: a bar on a terminal, lines elsewhere."""

import io

from seqlab.train.progress import ProgressDisplay


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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
