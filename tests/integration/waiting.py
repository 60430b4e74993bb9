"""``wait_for``: poll a condition with a deadline (tmux acts asynchronously), shared by
the tmux pane-host tests and the dashboard end-to-end test."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    check: Callable[[], object],
    seconds: float = 10.0,
    what: object = None,
    *,
    interval: float = 0.05,
    shown: Callable[[], str] | None = None,
) -> object:
    """Poll ``check`` until it returns something truthy, and return that.

    On timeout the failure names ``what`` (else ``check``) and adds ``shown()``, e.g. what
    the dashboard's pane showed.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {seconds}s waiting for {what or check}"
            if shown is not None:
                message += f"\n{shown()}"
            raise AssertionError(message)
        time.sleep(interval)
