"""GPTQ quantization: refused before any work when it cannot succeed; real end to end when it can."""

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workbench import cli
from workbench.errors import ConfigError
from workbench.quantization import quality, quantize, quantize_calibration, quantize_plan
from workbench.serving import hardware, models
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT, Client
from workbench.serving.engine import EngineConfig


@pytest.fixture(scope="module")
def bundled_spec():
    return models.spec_from_folder(models.prepare_bundled_model())


def test_group_size_that_does_not_divide_576_is_refused_before_any_work(tmp_path):
    out = tmp_path / "g128"
    with pytest.raises(ConfigError) as info:
        quantize.quantize(models.BUNDLED_MODEL, out, quantize.QuantizeSettings(group_size=128))
    message = str(info.value)
    assert "group_size=128" in message and "576" in message and "--group-size 64" in message
    assert not out.exists() and not list(tmp_path.iterdir())


def test_valid_group_sizes(bundled_spec):
    assert quantize.valid_group_sizes(bundled_spec) == [64, 32, -1]
    assert quantize.valid_group_sizes(models.CATALOG["Qwen3-14B"])[0] == 128  # 5120 and 17408 divide by 128


@pytest.mark.parametrize(
    "text, words",
    [
        ("", ["has 0 tokens"]),
        ("too short " * 20, ["samples", "Fix: give more text"]),
    ],
)
def test_empty_or_short_calibration_text_is_refused(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:
        quantize.quantize(
            models.BUNDLED_MODEL,
            tmp_path / "out",
            quantize.QuantizeSettings(samples=8, seq_len=128),
            calibration_text=text,
        )
    for word in words:
        assert word in str(info.value)
    assert not (tmp_path / "out").exists()


def test_default_group_size_is_the_planners_128_where_the_widths_allow_it(bundled_spec):
    assert quantize.QuantizeSettings().for_model(models.CATALOG["Qwen3-14B"]).group_size == 128
    assert quantize.QuantizeSettings().for_model(bundled_spec).group_size == 64  # 576 does not divide by 128


# (settings, what vLLM says, the fix) for every option the quantize command takes
VLLM_CASES = [
    (dict(), None, None),
    (dict(bits=8), None, None),
    (dict(method="rtn"), None, None),
    (dict(act_group_aware=False), None, None),
    (dict(desc_act=True, group_size=-1), None, None),  # one group per channel: ordering is a no-op, vLLM agrees
    (dict(desc_act=True), "desc_act=True) is no longer supported", "leave out --desc-act"),
    (dict(sym=False), "bits=4, sym=False", "leave out --asym"),
    (dict(bits=8, sym=False), "bits=8, sym=False", "leave out --asym"),
]


@pytest.mark.parametrize("options, reason, fix", VLLM_CASES)
def test_every_setting_goes_through_vllms_own_gptq_validation(options, reason, fix):
    settings = quantize.QuantizeSettings(**{"group_size": 128, **options})
    if reason is None:
        quantize.check_with_vllm(settings)
        return
    with pytest.raises(ConfigError) as info:
        quantize.check_with_vllm(settings)
    assert reason in str(info.value) and f"Fix: {fix}" in str(info.value)


@pytest.mark.parametrize("options", [case[0] for case in VLLM_CASES])
def test_the_checked_config_is_what_gptqmodel_writes(tmp_path, options):
    """quantization_config() describes GPTQModel's config.json fields; drift would make the check check nothing."""
    from gptqmodel import QuantizeConfig
    from gptqmodel.quantization.config import RTNConfig

    s = quantize.QuantizeSettings(**{"group_size": 128, **options})
    common = dict(bits=s.bits, group_size=s.group_size, sym=s.sym, offload_to_disk_path=str(tmp_path))
    config = (
        RTNConfig(**common)
        if s.method == "rtn"
        else QuantizeConfig(**common, desc_act=s.desc_act, act_group_aware=s.act_group_aware and not s.desc_act)
    )
    written = config.to_dict()
    ours = quantize.quantization_config(s)
    assert {k: written.get(k, False) for k in ours} == ours


def test_desc_act_is_refused_before_any_work(tmp_path):
    out = tmp_path / "desc"
    with pytest.raises(ConfigError, match="desc_act"):
        quantize.quantize(models.BUNDLED_MODEL, out, quantize.QuantizeSettings(desc_act=True))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flag, words",
    [("--desc-act", ["desc_act=True) is no longer supported", "--desc-act"]), ("--asym", ["sym=False", "--asym"])],
)
def test_the_cli_refuses_what_vllm_would_not_load(tmp_path, capsys, flag, words):
    started = time.monotonic()
    code = cli.main(["quantize", models.BUNDLED_MODEL, flag, "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: vLLM") and "Fix: leave out" in err
    assert all(w in err for w in words)
    assert time.monotonic() - started < 60 and not (tmp_path / "q").exists()  # before any work


def test_qwen3_14b_fits_a_3090_with_32_gib_of_ram_through_the_cli(capsys):
    code = cli.main(
        [
            "quantize",
            "Qwen/Qwen3-14B",
            "--bits",
            "4",
            "--group-size",
            "128",
            "--dry-run",
            "--gpu",
            "RTX 3090",
            "--ram-gib",
            "32",
            "--json",
        ]
    )
    plan = json.loads(capsys.readouterr().out)
    assert code == 0 and plan["fits"] and plan["device"] == "RTX 3090"
    assert 4 < plan["peak_ram_gib"] < 32 and 2 < plan["peak_gpu_gib"] < 23.58
    assert plan["disk_gib"] > 27.5  # at least the bf16 download
    assert plan["minutes"] > 1 and "arXiv:2210.17323" in plan["time_basis"]
    assert not plan["resumable"] and "qwen3" in plan["resume"]  # GPTQModel 7.6 checkpoints llama and qwen3_moe


def test_what_cannot_fit_is_refused_naming_what_would():
    spec, rtx3090 = models.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 3090")
    long = quantize_plan.plan(spec, 4, 128, 1024, 2048, rtx3090, 32.0)
    assert not long.fits and "GPU memory" in long.reason
    fewer = next(f for f in long.fixes if f.startswith("--samples"))
    samples = int(fewer.split()[1])
    assert quantize_plan.plan(spec, 4, 128, samples, 2048, rtx3090, 32.0).fits  # the fix it names does fit
    assert not quantize_plan.plan(spec, 4, 128, samples + 16, 2048, rtx3090, 32.0).fits
    small_ram = quantize_plan.plan(spec, 4, 128, 32, 512, None, 8.0)
    assert not small_ram.fits and any(f.startswith("a GPU") for f in small_ram.fixes)
    assert quantize_plan.plan(spec, 4, 128, 32, 512, None, 23.5).fits  # layer by layer, even on this CPU
    assert quantize.check_machine(models.CATALOG["smollm2-135m-instruct"], quantize.QuantizeSettings(), 23.5).fits


def test_a_form_keeps_the_defaults_of_empty_fields_and_the_target_is_checked_first(tmp_path):
    given = quantize.QuantizeSettings.given(
        method="rtn", bits=8.0, group_size=0, samples=None, seq_len="", desc_act=False
    )
    assert given == quantize.QuantizeSettings(method="rtn", bits=8) and isinstance(given.bits, int)
    assert quantize.target(models.BUNDLED_MODEL, quantize.QuantizeSettings(), str(tmp_path / "out")) == tmp_path / "out"
    default = quantize.target(models.BUNDLED_MODEL, quantize.QuantizeSettings())
    assert default.parent.name == "checkpoints" and "-gptq-int4-g64-" in default.name  # 576 wide: 64, not 128
    with pytest.raises(ConfigError, match="group_size=100 does not divide"):
        quantize.target(models.BUNDLED_MODEL, quantize.QuantizeSettings(group_size=100))


def test_default_calibration_is_chat_formatted_chinese_english_and_tool_calls():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models.resolve_model(models.BUNDLED_MODEL))
    text = quantize_calibration.chat_mix(tokenizer, 4000, max_tokens_each=512)
    assert "<|im_start|>assistant" in text  # the model's own chat template
    assert "第三条" in text or "合同" in text and "Party A" in text
    assert '"name": "get_weather"' in text and "<tool_call>" in text
    assert len(tokenizer(text)["input_ids"]) >= 4000


def test_dataset_files_as_the_hub_serves_them(tmp_path):
    """The files a Hub dataset is made of (c4's .json.gz lines, Parquet), read without `datasets`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with gzip.open(tmp_path / "c4-validation.json.gz", "wt") as f:
        f.write('{"text": "first document", "url": "u"}\n{"text": "second", "url": "v"}\n')
    assert quantize_calibration.dataset_text(tmp_path / "c4-validation.json.gz") == "first document\n\nsecond"
    pq.write_table(pa.table({"content": ["a", "b"]}), tmp_path / "d.parquet")
    assert quantize_calibration.dataset_text(tmp_path / "d.parquet", "content") == "a\n\nb"
    with pytest.raises(ConfigError, match="--calibration-column"):
        quantize_calibration.dataset_text(tmp_path / "d.parquet")


def test_calibration_files(tmp_path):
    (tmp_path / "a.txt").write_text("plain text")
    (tmp_path / "b.jsonl").write_text('{"text": "from jsonl"}\n\n{"text": "second"}\n')
    assert quantize.read_texts([tmp_path / "a.txt", tmp_path / "b.jsonl"]) == "plain text\n\nfrom jsonl\n\nsecond"
    (tmp_path / "bad.jsonl").write_text('{"no_text": 1}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        quantize.read_texts([tmp_path / "bad.jsonl"])


@pytest.mark.slow
def test_cancelled_run_leaves_no_checkpoint(tmp_path):
    cancel = threading.Event()
    seen = []

    def on_progress(progress):
        seen.append(progress)
        if progress.layer >= 1:
            cancel.set()

    out = tmp_path / "cancelled"
    with pytest.raises(quantize.Cancelled):
        quantize.quantize(
            models.BUNDLED_MODEL,
            out,
            quantize.QuantizeSettings(samples=8, seq_len=128),
            on_progress=on_progress,
            cancel=cancel,
        )
    assert seen and seen[-1].layer >= 1  # it really was quantizing
    assert not out.exists()
    assert not quantize.work_dir(out).exists()  # a cancel discards the finished layers too


@pytest.mark.slow
def test_gptq_end_to_end_served_by_vllm(tmp_path, client, start_engine):
    out = tmp_path / "smollm2-gptq-int4-g64"
    # calibrated on Python's docs, as the perplexity below is measured on held-out Python docs
    result = quantize.quantize(
        models.BUNDLED_MODEL, out, quantize.QuantizeSettings(samples=8, seq_len=256, calibration="pydoc")
    )
    assert result.out == out and (out / quantize.MANIFEST).is_file() and (out / "heldout.txt").is_file()
    assert result.manifest["settings"]["group_size"] == 64  # automatic: 576 does not divide by 128
    # the plan's peak RAM is not below what the run took, nor far above it
    peak, planned = result.manifest["peak_rss_gib"], result.manifest["planned_peak_ram_gib"]
    assert 0.75 * peak <= planned < 3 * peak, (
        peak,
        planned,
    )  # an estimate: 1.11 measured alone (plan 1.11-1.3), 1.65 against 1.31 inside make test
    assert not quantize.work_dir(out).exists()
    assert result.out_bytes < 0.5 * result.source_bytes  # 4-bit linear layers, 16-bit embeddings
    text = quality.eval_text(6000)
    bf16_ppl = quality.perplexity(client, text)["ppl"]
    engine = start_engine(EngineConfig(model=str(out), max_model_len=2048, enforce_eager=True, quantization="gptq"))
    assert "--quantization" not in engine.argv  # the checkpoint declares its own
    assert engine.report.linear_kernel == "CPUWNA16LinearKernel"
    served = Client(engine.base_url)
    answer = served.chat(
        "What is the capital of France?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=32
    ).text
    gptq_ppl = quality.perplexity(served, text)["ppl"]
    assert "Paris" in answer
    # bound: measured +16 % with 32 samples; 8 short samples are allowed up to +40 %
    assert bf16_ppl < gptq_ppl < 1.4 * bf16_ppl


_STARTS_A_RUN = """
import sys
from workbench.quantization import quantize
from workbench.serving import models
quantize.quantize(models.BUNDLED_MODEL, sys.argv[1], quantize.QuantizeSettings(samples=8, seq_len=128))
"""


def _workers(job: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(job) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_sigterm_stops_the_gptqmodel_child(tmp_path, sig=signal.SIGTERM):
    """SIGHUP takes the same path (quantize._stop_on); it passed the same test once, at 75 s, so runs only here."""
    out = tmp_path / "stopped"
    job = quantize.work_dir(out) / "job.json"
    run = subprocess.Popen(
        [sys.executable, "-c", _STARTS_A_RUN, str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 180
    while not _workers(job) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.5)
    assert _workers(job), run.communicate()[0].decode()[-2000:]  # the GPTQModel child is running
    os.kill(run.pid, sig)
    run.wait(timeout=60)
    time.sleep(1)
    assert not _workers(job)  # no child left behind
    assert not out.exists()
