"""Fixtures shared by the system tests: a private JACK server per test module."""

import os

import pytest

from rtai.testing.jack_rig import JackServer


@pytest.fixture(scope="module")
def jack_server(request):
    """A JACK server of the test's own (dummy driver, private name), clocked at the
    module's ``RATE`` with a period of its ``PERIOD``; stopped when the module is done."""
    module = request.module
    short = module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    server = JackServer(f"rtai-{short}-{os.getpid()}", module.RATE, module.PERIOD).start()
    yield server
    server.stop()
