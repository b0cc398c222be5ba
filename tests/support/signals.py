"""Ctrl-C in tests, whatever signal disposition the test run inherited.

A shell without job control starts background jobs with SIGINT ignored, and Python keeps
an ignored SIGINT ignored: a test run launched that way (``.ci/run &``) would see no
KeyboardInterrupt at all. Tests that send SIGINT use these to restore the default.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


def default_sigint() -> None:
    """``preexec_fn`` for a child that must see Ctrl-C: SIGINT back to its default, so Python
    installs its KeyboardInterrupt handler at start-up."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def sigint_raises() -> Iterator[None]:
    """Within the block, SIGINT raises KeyboardInterrupt in this process's main thread."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
