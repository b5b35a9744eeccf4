import contextlib
import locale

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@contextlib.contextmanager
def _c_locale():
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


@pytest.fixture
def ascii_locale():
    """``with ascii_locale():`` runs its block in the C locale, whose encoding is ASCII: a file opened
    without an encoding would be read as ASCII (unless Python runs in UTF-8 mode)."""
    return _c_locale
