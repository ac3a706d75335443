"""What every task shares: the verifier's verdict and the hub probe used by the loaders.

Simplified on purpose: a verdict is four plain fields, not a class hierarchy. The reward is a
float so that an optional format bonus fits, but by default it is exactly 1.0 or 0.0, as in
the paper.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """The verdict of a verifier on one completion.

    Attributes:
        reward: what the trainer sees; 1.0 for a correct answer, 0.0 otherwise (plus an
            optional format bonus, off by default).
        correct: the answer is right.
        well_formed: an answer was found where the template asks for it and it parses.
        reason: a short human-readable explanation, e.g. ``"division by zero"``.

    Example:
        >>> Score(1.0, True, True, "correct: 3*7+5 = 26").correct
        True
    """

    reward: float
    correct: bool
    well_formed: bool
    reason: str


_FALSE_WORDS = {"", "0", "false", "no", "off"}


def _env_offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() not in _FALSE_WORDS
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "COURSE_OFFLINE")
    )


@functools.lru_cache(maxsize=1)
def _probe(host: str, port: int, timeout: float) -> bool:
    result = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo ignores socket timeouts, and a broken resolver can stall for many
    # seconds; a daemon thread bounds the wait.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when the Hugging Face Hub answers within ``timeout`` seconds.

    ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1`` or ``COURSE_OFFLINE=1`` answer False
    without touching the network. The probe result is cached for the process, so the
    loaders never wait on ``datasets``' own retries (which take over 20 s without network).

    Example:
        >>> hub_reachable(timeout=0.5)  # doctest: +SKIP
        False
    """
    if _env_offline():
        return False
    return _probe("huggingface.co", 443, float(timeout))
