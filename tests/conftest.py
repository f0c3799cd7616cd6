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


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """Where the tiny random-weight checkpoints of tests/tiny_models.py are made, once a session."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def qwen3_engine(tiny_root):
    """The tiny real-vocabulary Qwen3, served by vLLM's CPU build with the reference case's parser flags, built
    by the same code that builds them for Qwen3-14B on a GPU (`enable_tools`, `enable_reasoning`). Random weights
    write nothing useful, so tests force the text with structured outputs; `enable_in_reasoning` lets the forcing
    reach inside <think>…</think> (vllm/config/structured_outputs.py)."""
    import os

    from tests.tiny_models import make_tiny_model
    from workbench.engine import Engine, EngineConfig

    if os.environ.get("WORKBENCH_TEST_TIER") == "fast":
        pytest.fail("qwen3_engine starts vLLM, which the fast tier does not; run `make test`", pytrace=False)
    folder = make_tiny_model("tiny-qwen3", tiny_root)
    config = EngineConfig(model=str(folder), max_model_len=2048, cpu_kv_cache_gib=1, enforce_eager=True,
                          enable_tools=True, enable_reasoning=True, startup_timeout_s=400,
                          extra_args=("--structured-outputs-config", '{"enable_in_reasoning": true}'))
    engine = Engine(config, log_path=tiny_root / "tiny-qwen3-engine.log")
    engine.start()
    yield engine
    engine.stop()
