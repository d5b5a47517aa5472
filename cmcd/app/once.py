"""One build per key, even when several handlers ask for it at once."""

from __future__ import annotations

import functools
import threading


def once_per_key(function):
    """Cache `function`'s result per argument tuple, like functools.cache, but with a lock per
    key: a second caller that asks while the first is still building waits for that build
    instead of starting its own. A build that raises caches nothing (the next caller retries)."""
    results: dict = {}
    locks: dict = {}
    guard = threading.Lock()  # guards `locks`

    @functools.wraps(function)
    def wrapper(*args):
        with guard:
            lock = locks.setdefault(args, threading.Lock())
        with lock:
            if args not in results:
                results[args] = function(*args)
            return results[args]

    wrapper.cache_clear = results.clear
    return wrapper
