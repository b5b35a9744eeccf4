"""``seqlab ARGS`` run in the test's own process, as the tests of the command line call it."""

from seqlab.cli.main import main


def run_cli(*args, capsys):
    """-> (exit status, standard output, standard error). The parser's own refusals (``SystemExit``:
    a flag of another task, a bad choice) count by their status."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
