import pytest

from workbench.client import Client


@pytest.fixture(scope="session")
def client(engine):
    return Client(engine.base_url)


@pytest.fixture
def start_engine(tmp_path):
    """For a test that starts vLLM engines of its own: `start_engine(config)` starts one (raising as
    Engine.start does) and every one is stopped after the test. Asking for it marks the test `engine`."""
    import os

    from workbench.engine import Engine

    if os.environ.get("WORKBENCH_TEST_TIER") == "fast":
        pytest.fail("start_engine starts vLLM, which the fast tier does not; run `make test`", pytrace=False)
    started = []

    def start(config, log_path=None):
        engine = Engine(config, log_path=log_path or tmp_path / f"engine-{len(started)}.log")
        started.append(engine)
        engine.start()
        return engine

    yield start
    for engine in started:
        engine.stop()


@pytest.fixture
def starts_vllm():
    """For a test that starts vLLM by other means (the `workbench serve` command): marks it `engine`."""
