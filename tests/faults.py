"""Faults injected into the file system calls qex makes."""

from __future__ import annotations

import os
from collections.abc import Callable


def fail_with(error: int) -> Callable[..., None]:
    """A stand-in for any call: it fails with the OSError ``error``."""

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(error, os.strerror(error))

    return fail
