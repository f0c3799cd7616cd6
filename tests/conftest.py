import pytest

from workbench.serving.client import Client


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cpu_build: asserts a fact of vLLM's CPU build (its KV cache of "
        "VLLM_CPU_KVCACHE_SPACE, planned to the token); skipped on the CUDA build with the reason",
    )


def pytest_collection_modifyitems(config, items):
    """`cpu_build` tests run where vllm-cpu is installed; `gpu` tests where the CUDA build sees a GPU. Elsewhere each is
    skipped with the reason (`make test` on an RTX 3090 runs the gpu ones and skips the CPU build's facts)."""
    from workbench.serving import hardware

    build = hardware.vllm_build()
    cuda = build == "vllm" and bool(hardware.detect_gpus())
    for item in items:
        if "cpu_build" in item.keywords and build != "vllm-cpu":
            item.add_marker(pytest.mark.skip(reason=f"a fact of vLLM's CPU build; this machine runs {build}"))
        if "gpu" in item.keywords and not cuda:
            item.add_marker(
                pytest.mark.skip(
                    reason="needs a CUDA GPU and vLLM's CUDA build (this machine: "
                    f"{build or 'no vLLM'}, {'a' if hardware.detect_gpus() else 'no'} GPU)"
                )
            )


@pytest.fixture(scope="session")
def client(engine):
    return Client(engine.base_url)


@pytest.fixture
def start_engine(tmp_path):
    """For a test that starts vLLM engines of its own: `start_engine(config)` starts one (raising as
    Engine.start does) and every one is stopped after the test. Asking for it marks the test `engine`."""
    import os

    from workbench.serving.engine import Engine

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


QWEN3_HUB_ID = "test-org/tiny-qwen3"


@pytest.fixture(scope="session")
def qwen3_engine(tiny_root):
    """The tiny real-vocabulary Qwen3, served by vLLM's CPU build with the reference case's parser flags, built
    by the same code that builds them for Qwen3-14B on a GPU (`enable_tools`, `enable_reasoning`). Random weights
    write nothing useful, so tests force the text with structured outputs; `enable_in_reasoning` lets the forcing
    reach inside <think>…</think> (vllm/config/structured_outputs.py)."""
    import os

    from tests.tiny_models import make_tiny_model
    from workbench.serving.engine import Engine, EngineConfig

    if os.environ.get("WORKBENCH_TEST_TIER") == "fast":
        pytest.fail("qwen3_engine starts vLLM, which the fast tier does not; run `make test`", pytrace=False)
    if os.environ.get("WORKBENCH_TEST_QWEN3_URL"):  # reuse a tiny-Qwen3 engine you already run while iterating
        yield Engine.attach(os.environ["WORKBENCH_TEST_QWEN3_URL"], log_path=os.environ.get("WORKBENCH_TEST_QWEN3_LOG"))
        return
    from tests.hub_standin import HubStandin

    folder = make_tiny_model("tiny-qwen3", tiny_root)
    # started by its Hugging Face id through the Hub's stand-in, as a user's model is: downloaded into the session's cache
    # with progress, then vLLM from that cache, offline (tests/serving/test_hub.py checks what this start did)
    config = EngineConfig(
        model=QWEN3_HUB_ID,
        max_model_len=2048,
        cpu_kv_cache_gib=1,
        enforce_eager=True,
        enable_tools=True,
        enable_reasoning=True,
        startup_timeout_s=400,
        extra_args=("--structured-outputs-config", '{"enable_in_reasoning": true}'),
    )
    engine = Engine(config, log_path=tiny_root / "tiny-qwen3-engine.log")
    with HubStandin({QWEN3_HUB_ID: folder}) as hub, pytest.MonkeyPatch.context() as env:
        env.setenv("HF_ENDPOINT", hub.url)
        env.setenv("HF_HUB_DISABLE_XET", "1")
        env.delenv("HF_HUB_OFFLINE", raising=False)
        engine.start()
        engine.hub_requests = list(hub.requests)
    yield engine
    engine.stop()
