import os
import socket

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session builds its data into a fresh cache folder of its own."""
    folder = tmp_path_factory.mktemp("cmcd-cache")
    previous = os.environ.get("CMCD_CACHE")
    os.environ["CMCD_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("CMCD_CACHE", None)
    else:
        os.environ["CMCD_CACHE"] = previous


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network connection attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts
