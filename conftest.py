"""The one real vLLM engine of a test session, shared by tests/ and the notebooks (nbval), and the
test tiers.

The engine starts once, lazily, on the bundled model; notebooks find it through WORKBENCH_URL and
WORKBENCH_ENGINE_LOG, which are set before their kernels start. Set WORKBENCH_TEST_URL (and
WORKBENCH_TEST_LOG) to reuse an engine you already run while iterating.

Tiers: every test that needs or starts vLLM is marked `engine` here, from the fixtures it asks for
(and every notebook, since each one talks to the engine). `make test-fast` runs `-m "not engine"`
with WORKBENCH_TEST_TIER=fast, where asking for the engine fails instead of starting vLLM.
"""

import os
import tempfile
from pathlib import Path

import pytest

_session_engine = None
# The session's own Hugging Face cache: tests never read or fill the user's. The tiny Qwen3 is downloaded into it
# through the Hub's stand-in (tests/conftest.py), and what plans that model later finds it there, offline.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="workbench-test-hf-")
ENGINE_FIXTURES = {"engine", "client", "app_url", "start_engine", "starts_vllm", "qwen3_engine"}


def _is_notebook(item) -> bool:
    return str(item.fspath).endswith(".ipynb")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _is_notebook(item) or ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)


def session_engine():
    global _session_engine
    if _session_engine is None:
        if os.environ.get("WORKBENCH_TEST_TIER") == "fast":
            pytest.fail(
                "this test needs the vLLM engine, but the fast tier starts none; it should ask for one of "
                f"the fixtures {sorted(ENGINE_FIXTURES)} so that it is marked `engine`",
                pytrace=False,
            )
        from workbench.serving.engine import Engine, EngineConfig

        url = os.environ.get("WORKBENCH_TEST_URL")
        log = (
            os.environ.get("WORKBENCH_TEST_LOG")
            if url
            else Path(tempfile.mkdtemp(prefix="workbench-test-")) / "engine.log"
        )
        _session_engine = Engine.connect(url, EngineConfig(enable_tools=True), log_path=log)
        os.environ["WORKBENCH_URL"] = _session_engine.url
        if _session_engine.log_path:
            os.environ["WORKBENCH_ENGINE_LOG"] = str(_session_engine.log_path)
    return _session_engine


def pytest_configure(config):
    # `kill PID` (a CI's timeout) unwinds like Ctrl-C, so that pytest_sessionfinish and the fixtures stop the engines
    # they started instead of leaving vLLM running without its parent
    from workbench.serving import processes

    processes.stop_on_signals()


@pytest.fixture(scope="session")
def engine():
    return session_engine()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # nbval items are not functions and take no fixtures: start the engine before the kernel.
    if _is_notebook(item):
        session_engine()


def pytest_sessionfinish(session, exitstatus):
    if _session_engine is not None:
        _session_engine.stop()
