"""How the benchmark scripts print a measured figure: truncated to the decimals shown, never rounded up
(a ratio of 1.4996 prints as 1.49, not as a target's 1.50)."""

import math


def down(x: float, places: int) -> str:
    """``x`` with ``places`` decimals, truncated."""
    return f"{math.floor(x * 10 ** places) / 10 ** places:.{places}f}"
