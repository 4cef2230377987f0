"""One-line notices from library code about what it did to the data directory on its
own (a damaged file moved aside and rebuilt, a lost model registry rebuilt).

The CLI prints them as ``warning:`` lines when they happen (:func:`printing`); anyone
else calling the library gets them as :class:`DiffriskWarning` through :mod:`warnings`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator


class DiffriskWarning(UserWarning):
    """Something diffrisk repaired or could not repair, and the user should know."""


_sink: Callable[[str], None] | None = None


def notice(message: str) -> None:
    """Tell the user ``message`` (one line), through the CLI when it listens."""
    if _sink is not None:
        _sink(message)
    else:
        warnings.warn(message, DiffriskWarning, stacklevel=2)


@contextlib.contextmanager
def printing(show: Callable[[str], None]) -> Iterator[None]:
    """Send notices to ``show`` (each distinct one once) until the block ends."""
    global _sink
    seen: set[str] = set()

    def once(message: str) -> None:
        if message not in seen:
            seen.add(message)
            show(message)

    before, _sink = _sink, once
    try:
        yield
    finally:
        _sink = before
