"""Models by their Hugging Face id, through the real `huggingface_hub` client and a stand-in for the Hub
(tests/hub_standin.py, serving real files): plans without weights, downloads that resume, one-line errors."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QWEN3_HUB_ID
from tests.hub_standin import HubStandin
from workbench import cli
from workbench.planner import budget
from workbench.serving import hub, models

DATA = Path(__file__).parents[1] / "data"
AWQ = "Qwen/Qwen3-14B-AWQ"
GATED = "test-org/gated-smollm2"
# A start-up log in vLLM 0.14's format that names its model by Hub id, with the numbers of llm-d-benchmark's H100
# run of Llama-3.1-8B (tests/data/public_logs.json, row llama31-8b-bf16-h100-16k-v0.14)
HUB_ID_LOG = DATA / "logs" / "gpu_v1_llama31_8b_h100_hub_id.log"


@pytest.fixture(scope="module")
def standin(tiny_root):
    from tests.tiny_models import make_tiny_model

    bundled = models.prepare_bundled_model()
    repos = {
        "test-org/smollm2": bundled,
        GATED: bundled,
        QWEN3_HUB_ID: make_tiny_model("tiny-qwen3", tiny_root),
        AWQ: DATA / "hub" / "Qwen3-14B-AWQ",
    }
    with HubStandin(repos, gated=(GATED,)) as server:
        yield server


@pytest.fixture
def hf(standin, tmp_path, monkeypatch):
    """A fresh Hugging Face cache, the stand-in as the Hub, no token."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    standin.requests.clear()
    return standin


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def plan_json(capsys, *argv) -> dict:
    code, out, err = run(capsys, "plan", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_model_the_catalog_does_not_know_is_planned_from_its_id_without_its_weights(hf, capsys, monkeypatch):
    folder = Path(hf.repos[QWEN3_HUB_ID].folder)
    out = plan_json(capsys, "--model", QWEN3_HUB_ID, "--gpu", "RTX 3090", "--max-model-len", "4096")
    exact = models.safetensors_payload_bytes(folder)
    assert out["weights_gib"] == round(exact / 2**30, 2) and "safetensors headers" in out["weights_source"]
    assert out["kv_bytes_per_token"] == 2 * 2 * 2 * 128 * 2  # 2 layers × K,V × 2 KV heads × head_dim 128 × bf16
    assert "--tool-call-parser hermes" in " ".join(out["vllm_args"])
    weights = [r for r in hf.requests if r["path"].endswith(".safetensors") and r["method"] == "GET"]
    assert weights and all(r["range"] for r in weights), "the weights were fetched, not only their header"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # later, offline: the same plan from the cache
    hf.requests.clear()
    assert plan_json(capsys, "--model", QWEN3_HUB_ID, "--gpu", "RTX 3090", "--max-model-len", "4096") == out
    assert hf.requests == []


def test_qwens_awq_checkpoint_is_planned_int4_offline_from_a_cache_holding_only_its_config(hf, capsys, monkeypatch):
    hub.metadata(AWQ, headers=False)  # the cache now holds config.json only: the repo has nothing else
    snapshot = next((Path(os.environ["HF_HOME"]) / "hub" / "models--Qwen--Qwen3-14B-AWQ" / "snapshots").iterdir())
    assert [p.name for p in snapshot.iterdir()] == ["config.json"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = plan_json(capsys, "--model", AWQ, "--gpu", "RTX 3090", "--max-model-len", "32768")
    assert out["quant"] == "awq-int4" and out["fits"] and out["checkpoint_note"].startswith(AWQ)
    assert out["weights_gib"] == pytest.approx(9.44, rel=0.03)  # vLLM 0.28 on an L40S: "Model loading took 9.44 GiB"
    assert "config.json" in out["weights_source"]
    code, printed, err = run(capsys, "serve", "--print-command", "--device", "gpu", "--model", AWQ, "--enable-tools")
    assert code == 0, err
    assert printed.startswith(f"vllm serve {AWQ} ") and "--tool-call-parser hermes --reasoning-parser qwen3" in printed
    assert "--served-model-name" not in printed and "--quantization" not in printed


def test_a_local_folder_that_declares_gptq_is_planned_in_that_format_without_quant(tmp_path, capsys):
    config = json.loads((DATA / "hub" / "Qwen3-14B-AWQ" / "config.json").read_text())
    config["quantization_config"] = {
        "quant_method": "gptq",
        "bits": 4,
        "group_size": 128,
        "desc_act": False,
        "sym": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = plan_json(capsys, "--model", str(tmp_path), "--gpu", "RTX 3090", "--max-model-len", "32768")
    assert out["quant"] == "gptq-int4" and out["fits"]
    assert out["weights_gib"] == round(budget.weight_bytes(models.CATALOG["Qwen3-14B"], "gptq-int4") / 2**30, 2)
    assert not any("quantize" in s for s in out["suggestions"])


@pytest.mark.parametrize(
    "config, fmt",
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "awq-int4"),
        ({"quant_method": "gptq", "bits": 8, "group_size": 128}, "gptq-int8"),
        ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "bnb-nf4"),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {
                    "group_0": {
                        "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128},
                        "input_activations": None,
                        "targets": ["Linear"],
                    }
                },
            },
            "w4a16",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "float-quantized",
                "config_groups": {
                    "group_0": {
                        "weights": {"num_bits": 8, "type": "float"},
                        "input_activations": {"num_bits": 8, "type": "float"},
                    }
                },
            },
            "fp8",
        ),
    ],
)
def test_each_declared_quantization_is_read_as_a_format_the_planner_sizes(config, fmt):
    assert models.declared_format(config) == fmt and fmt in budget.QUANT_FORMATS


def test_an_architecture_the_planner_does_not_model_is_refused_naming_it(tmp_path, capsys):
    config = {
        "model_type": "jamba",
        "num_hidden_layers": 4,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "layers_block_type": ["mamba", "attention", "mamba", "mamba"],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "plan", "--model", str(tmp_path))
    assert code == 2 and "mamba layers" in err and "jamba" in err and len(err.strip().splitlines()) == 1


def test_a_gated_model_needs_a_token_and_downloads_with_one(hf, capsys, monkeypatch):
    code, _, err = run(capsys, "download", GATED)
    assert code == 2 and "gated" in err and "HF_TOKEN" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("HF_TOKEN", hf.token)
    code, out, err = run(capsys, "download", GATED)
    assert code == 0, err
    folder = Path(out.split(": ", 1)[1].rsplit(" (", 1)[0])
    source = hf.repos[GATED].folder / "model.safetensors"
    assert (folder / "model.safetensors").stat().st_size == source.stat().st_size
    assert f"downloading {GATED}" in err and "MB" in err  # the progress bar, on stderr: bytes, rate, time left


@pytest.mark.parametrize(
    "argv, offline, words",
    [
        (["plan", "--model", "nobody/nothing-cached"], True, "is not in the Hugging Face cache"),
        (["plan", "--model", "Qwen//x"], False, "is neither a Hugging Face id nor a folder"),
        (["serve", "--print-command", "--model", "Qwen//x"], False, "is neither a Hugging Face id nor a folder"),
        (["plan", "--model", "test-org/smollm2", "--revision", "v9.9"], False, "has no revision 'v9.9'"),
        (["download", "test-org/smollm2", "--revision", "v9.9"], False, "has no revision 'v9.9'"),
        (["tune", "--dry-run", "--model", "test-org/smollm2", "--revision", "v9.9"], False, "has no revision 'v9.9'"),
        (
            [
                "compare",
                "--candidate",
                "test-org/smollm2,revision=v9.9",
                "--candidate",
                "smollm2-135m-instruct",
                "--tasks",
                "ppl",
                "--workload",
                "none",
            ],
            False,
            "has no revision 'v9.9'",
        ),
        (["plan", "--model", GATED], False, "is a gated model"),
        (["plan", "--model", "test-org/missing"], False, "there is no model 'test-org/missing'"),
        (["serve", "--model", "test-org/missing"], False, "there is no model 'test-org/missing'"),
        (["plan", "--model", "Qwen3-32B", "--calibrate-from", "UNRESOLVABLE_LOG"], False, "--log-model"),
    ],
)
def test_bad_input_gets_one_line_with_the_fix(hf, capsys, monkeypatch, tmp_path, argv, offline, words):
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if "UNRESOLVABLE_LOG" in argv:
        log = tmp_path / "serve.log"
        log.write_text(HUB_ID_LOG.read_text().replace("meta-llama/Llama-3.1-8B-Instruct", "my-org/llama-finetune"))
        argv = [str(log) if a == "UNRESOLVABLE_LOG" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and err.startswith("error: ")


def test_too_little_disk_is_refused_before_downloading(hf, capsys, monkeypatch):
    monkeypatch.setattr(hub, "free_bytes", lambda folder: 100 * 2**20)  # stands in for a nearly full disk
    code, _, err = run(capsys, "download", "test-org/smollm2")
    assert code == 2 and "0.25 GiB more" in err and "0.10 GiB free" in err and len(err.strip().splitlines()) == 1
    assert not [r for r in hf.requests if r["path"].endswith("model.safetensors") and r["method"] == "GET"]


def test_a_download_killed_halfway_resumes_where_it_stopped(hf, tmp_path):
    source = hf.repos["test-org/smollm2"].folder / "model.safetensors"
    hf.bytes_per_s = 40e6  # about 7 s for the 269 MB, so that it can be killed halfway
    cache = Path(os.environ["HF_HOME"]) / "hub" / "models--test-org--smollm2" / "blobs"
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "download", "test-org/smollm2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = [p for p in cache.glob("*.part")] if cache.is_dir() else []
            if partial and partial[0].stat().st_size > 60e6:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the download did not get going")
    finally:
        child.kill()  # halfway: killed, as a closed laptop or Ctrl-\ would
        child.wait()
    kept = partial[0].stat().st_size
    assert 0 < kept < source.stat().st_size
    hf.bytes_per_s = None
    hf.requests.clear()
    folder = hub.download("test-org/smollm2")
    resumed = [r for r in hf.requests if r["path"].endswith("/model.safetensors") and r["method"] == "GET"]
    assert len(resumed) == 1 and int(resumed[0]["range"].removeprefix("bytes=").split("-")[0]) >= kept - 2**20
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(folder / "model.safetensors") == digest(source)


def test_a_vllm_log_naming_its_model_by_hub_id_calibrates_the_plan_of_another_model(capsys, monkeypatch):
    """The issue's case: a vLLM log that names meta-llama/Llama-3.1-8B-Instruct (llm-d-benchmark's H100 run) and a
    plan for Qwen3-32B on that machine, offline. vLLM reported 4.45 GiB of KV cache for Qwen3-32B there."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = plan_json(capsys, "--model", "Qwen3-32B", "--calibrate-from", str(HUB_ID_LOG), "--max-model-len", "16000")
    assert out["kv_cache_gib"] == pytest.approx(4.45, rel=0.05)
    fitted = out["calibration"]["fitted_terms"]["overhead_gib"]
    assert 0 <= fitted < 0.5 and out["calibration"]["recomputed_terms"]["log"]["model"] == "Llama-3.1-8B"
    named = plan_json(
        capsys,
        "--model",
        "Qwen3-32B",
        "--calibrate-from",
        str(HUB_ID_LOG),
        "--max-model-len",
        "16000",
        "--log-model",
        "Llama-3.1-8B",
    )
    assert named["kv_cache_gib"] == out["kv_cache_gib"]


def test_catalog_ids_and_their_published_checkpoints_resolve_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    assert models.find_model("meta-llama/Llama-3.1-8B-Instruct") == models.CATALOG["Llama-3.1-8B"]
    awq = models.find_model("Qwen/Qwen3-8B-AWQ")
    assert (awq.declared_format, awq.checkpoint, awq.num_layers) == ("awq-int4", "Qwen/Qwen3-8B-AWQ", 36)
    assert models.hub_id("Qwen3-14B") == "Qwen/Qwen3-14B" and models.hub_id(models.BUNDLED_MODEL) is None


def test_the_plans_quantize_command_takes_the_hub_id_it_prints(capsys):
    """`plan` tells the user to run `workbench quantize Qwen/Qwen3-14B ...`; the command parses, and the id is one
    the resolver downloads (the download itself is tested above)."""
    out = plan_json(capsys, "--model", "Qwen3-14B", "--quant", "gptq-int4", "--gpu", "RTX 3090")
    line = next(s for s in out["checkpoint_note"].split("`") if s.startswith("workbench quantize"))
    args = cli.build_parser().parse_args(line.split()[1:])
    assert args.func is cli.run_quantize and models.hub_id(args.model) == "Qwen/Qwen3-14B"


def test_the_tiny_qwen3_is_served_by_its_id_downloaded_then_started_offline_from_the_cache(qwen3_engine):
    """The session's tiny-Qwen3 engine (tests/conftest.py) is started by Hub id through the stand-in: the weights
    were downloaded, vLLM got the id (not a folder) and HF_HUB_OFFLINE, and it answers under the id."""
    from workbench.serving.client import Client

    if not hasattr(qwen3_engine, "hub_requests"):
        pytest.skip("WORKBENCH_TEST_QWEN3_URL: the tiny-Qwen3 engine is one started elsewhere, not by its Hub id")
    assert qwen3_engine.argv[qwen3_engine.argv.index("--model") + 1] == QWEN3_HUB_ID
    fetched = [
        r for r in qwen3_engine.hub_requests if r["path"].endswith("/model.safetensors") and r["method"] == "GET"
    ]
    assert fetched and "HF_HUB_OFFLINE=1" in Path(f"/proc/{qwen3_engine.process.pid}/environ").read_bytes().decode(
        errors="replace"
    ).replace("\0", " ")
    client = Client(qwen3_engine.base_url)
    assert client.models() == [QWEN3_HUB_ID]
    result = client.chat("Hello", max_tokens=4, temperature=0)
    assert result.usage.completion_tokens >= 1


def test_a_face_without_a_terminal_hears_the_downloads_progress(hf):
    hf.bytes_per_s = 100e6  # about 3 s for the 269 MB: several reports, each at most every half second
    heard = []
    with hub.watching(heard.append):
        hub.download("test-org/smollm2")
    assert len(heard) >= 3 and [p.done for p in heard] == sorted(p.done for p in heard)
    assert heard[-1].finished and str(heard[-1]) == "downloading test-org/smollm2: 0.25 of 0.25 GiB (100%)"
    assert any("MiB/s, about" in str(p) and "left" in str(p) for p in heard[:-1])
    heard.clear()
    hub.download("test-org/smollm2")  # outside the block, and nothing left to fetch: nothing heard
    assert heard == []


def test_compare_checks_a_hub_candidate_without_downloading_it_then_shows_the_download_as_its_engine_step(hf):
    from workbench.measurement import compare_request

    request = compare_request.CompareRequest(
        candidates=(
            compare_request.Candidate("bundled", models.BUNDLED_MODEL),
            compare_request.Candidate("hub", "test-org/smollm2"),
        ),
        tasks=("ppl",),
        workload=None,
    )
    compare_request.check(request)

    def weights():  # whole downloads of the weights (a header is read by a range request)
        return [
            r
            for r in hf.requests
            if r["path"].endswith("/model.safetensors") and r["method"] == "GET" and not r.get("range")
        ]

    assert weights() == []  # only the safetensors header was read (a range request)
    events = []
    folder = compare_request.checkpoint_folder(request.candidates[1], lambda *event: events.append(event))
    assert (folder / "model.safetensors").is_file() and len(weights()) == 1
    assert events and all(step == "engine" and state == "downloading" for step, state, _ in events)
    assert events[-1][2].startswith("downloading test-org/smollm2: 0.25 of 0.25 GiB")


def test_a_hub_models_checkpoints_land_flat_in_the_one_home_of_checkpoints():
    from workbench import settings
    from workbench.quantization import quantize

    folder = quantize.checkpoint_dir("Qwen/Qwen3-14B", quantize.QuantizeSettings(group_size=128), "20261207-1200")
    assert folder == settings.cache_dir() / "checkpoints" / "Qwen--Qwen3-14B-gptq-int4-g128-20261207-1200"


def test_the_app_says_what_it_downloads_while_its_engine_starts_and_a_stop_then_starts_nothing(hf):
    from workbench.serving.engine import EngineConfig
    from workbench.ui.context import AppContext

    hf.bytes_per_s = 40e6  # about 7 s for the 269 MB
    ctx = AppContext(EngineConfig(model="test-org/smollm2"))
    ctx.start()
    deadline = time.monotonic() + 30
    while "downloading" not in ctx.status() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ctx.status().startswith("starting: downloading test-org/smollm2: ") and "GiB (" in ctx.status()
    ctx.stop()
    ctx._thread.join(timeout=30)
    assert not ctx.starting and ctx.engine.process is None  # the download ended, and no vLLM was spawned
