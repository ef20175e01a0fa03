"""The operator suite (issue 17): command line, configuration, logs,
metrics, health, install, backup, README walkthrough, console. It reuses
the black-box harness of tests/http (real glared processes on loopback),
loaded under another module name so both suites keep their conftest."""
import importlib.util
import os
import sys

_path = os.path.join(os.path.dirname(__file__), "..", "http", "conftest.py")
_spec = importlib.util.spec_from_file_location("http_harness", _path)
harness = importlib.util.module_from_spec(_spec)
sys.modules["http_harness"] = harness
_spec.loader.exec_module(harness)

import signal

import pytest

# the fixtures, for pytest to find here
server = harness.server
uniq = harness.uniq


@pytest.fixture
def make_server():
    """harness.make_server, but stopped with SIGTERM, as an operator
    stops glared (whatever is left of a server's process group afterwards
    is killed)."""
    yield from harness.server_maker(signal.SIGTERM)
