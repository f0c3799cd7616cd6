"""The one real vLLM engine of a test session, shared by tests/ and the notebooks (nbval).

It starts once, lazily, on the bundled model; notebooks find it through WORKBENCH_URL and
WORKBENCH_ENGINE_LOG, which are set before their kernels start. Set WORKBENCH_TEST_URL (and
WORKBENCH_TEST_LOG) to reuse an engine you already run while iterating.
"""

import os
import tempfile
from pathlib import Path

import pytest

_session_engine = None


def session_engine():
    global _session_engine
    if _session_engine is None:
        from workbench.engine import Engine, EngineConfig

        url = os.environ.get("WORKBENCH_TEST_URL")
        if url:
            _session_engine = Engine.attach(url, log_path=os.environ.get("WORKBENCH_TEST_LOG"))
        else:
            log = Path(tempfile.mkdtemp(prefix="workbench-test-")) / "engine.log"
            _session_engine = Engine(EngineConfig(enable_tools=True), log_path=log)
            _session_engine.start()
        os.environ["WORKBENCH_URL"] = _session_engine.url
        if _session_engine.log_path:
            os.environ["WORKBENCH_ENGINE_LOG"] = str(_session_engine.log_path)
    return _session_engine


@pytest.fixture(scope="session")
def engine():
    return session_engine()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # nbval items are not functions and take no fixtures: start the engine before the kernel.
    if str(item.fspath).endswith(".ipynb"):
        session_engine()


def pytest_sessionfinish(session, exitstatus):
    if _session_engine is not None:
        _session_engine.stop()
