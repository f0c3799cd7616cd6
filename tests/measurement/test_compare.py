"""`workbench compare`: candidates, tasks and the store, the refusals before any work, the report people read, and
on the real engine a run that is killed and resumed without recomputing, and a checkpoint that fails to start
while the others go on."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from workbench.errors import ConfigError
from workbench.measurement import abconfig, bench, bfcl, compare, compare_request, compare_tasks, toolseval
from workbench.measurement.compare_report import CompareReport
from workbench.serving import models
from workbench.serving.engine import free_port

WORKBENCH = [sys.executable, "-m", "workbench.cli"]


def cli(*args, timeout=600, **kwargs):
    return subprocess.run([*WORKBENCH, "compare", *args], capture_output=True, text=True, timeout=timeout, **kwargs)


# -- candidates, tasks, workloads ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, name, target, flags",
    [
        ("smollm2-135m-instruct", "smollm2-135m-instruct", "smollm2-135m-instruct", ()),
        ("ckpt/gptq", "gptq", "ckpt/gptq", ()),
        (
            "int4=ckpt/gptq --max-num-seqs 8 --enforce-eager",
            "int4",
            "ckpt/gptq",
            ("--max-num-seqs", "8", "--enforce-eager"),
        ),
        ("http://127.0.0.1:8000/v1", "127.0.0.1:8000", "http://127.0.0.1:8000/v1", ()),
        ("remote=http://gpu-box:8000?x=1", "remote", "http://gpu-box:8000?x=1", ()),
        ("'my ckpt/int4 g64'", "int4 g64", "my ckpt/int4 g64", ()),
    ],
)
def test_candidates_parse(text, name, target, flags):
    assert compare_request.parse_candidate(text) == compare_request.Candidate(name, target, flags)


def test_a_candidate_carries_its_revision_to_the_engine():
    """`,revision=R` pins a Hugging Face id's branch, tag or commit: it is the EngineConfig's revision (so vLLM gets
    --revision) and part of what the results are stored under; a bad option names the valid ones."""
    c = compare_request.parse_candidate("awq=Qwen/Qwen3-14B-AWQ,revision=v1.0,thinking=off --max-num-seqs 8")
    assert c == compare_request.Candidate("awq", "Qwen/Qwen3-14B-AWQ", ("--max-num-seqs", "8"), False, "v1.0")
    config = compare.engine_config(c, compare_request.CompareRequest(candidates=(c,)))
    assert (config.model, config.revision, config.max_num_seqs) == ("Qwen/Qwen3-14B-AWQ", "v1.0", 8)
    assert c.as_dict()["revision"] == "v1.0" and compare_request.parse_candidate("Qwen/Qwen3-14B-AWQ").revision is None
    for bad in ("ckpt,revison=main", "ckpt,revision=", "ckpt,thinking=maybe"):
        with pytest.raises(
            ConfigError,
            match=r"candidate option '.*' is unknown\. Valid: thinking=on, thinking=off, "
            r"revision=BRANCH-TAG-OR-COMMIT.*Fix: e\.g\. ",
        ):
            compare_request.parse_candidate(bad)
    with pytest.raises(
        ConfigError,
        match=r"revision=main applies to a Hugging Face id; http://127\.0\.0\.1:8000 is "
        r"a running server.*Fix: drop the revision",
    ):
        compare_request.parse_candidate("http://127.0.0.1:8000,revision=main")


def test_serve_flags_are_vllms_and_a_typo_is_named():
    fields = compare.vllm_flags.parse_args(
        ["--max-num-seqs", "8", "--kv-cache-dtype=fp8", "--enforce-eager", "--", "--structured-outputs-config", "{}"]
    )
    assert fields == {
        "max_num_seqs": 8,
        "kv_cache_dtype": "fp8",
        "enforce_eager": True,
        "extra_args": ("--structured-outputs-config", "{}"),
    }
    with pytest.raises(ConfigError, match=r"'--max-num-seq' is not a vLLM serve flag.*--max-num-seqs.*lone `--`"):
        compare.vllm_flags.parse_args(["--max-num-seq", "8"])
    with pytest.raises(ConfigError, match=r"--max-num-seqs 'many' is not an integer"):
        compare.vllm_flags.parse_args(["--max-num-seqs", "many"])


def test_workloads_and_tasks_parse_and_refuse_clearly():
    assert compare_request.parse_workload("c=1,2") == ((1, 2), None)
    assert compare_request.parse_workload("rate=2.5") == ((), 2.5)
    assert compare_request.parse_workload("none") is None
    with pytest.raises(ConfigError, match=r"workload 'c=0'.*c=LEVELS"):
        compare_request.parse_workload("c=0")
    assert compare_request.parse_tasks("ppl,tools,ppl") == ("ppl", "tools")
    with pytest.raises(ConfigError, match=r"unknown task 'speed'\. Valid: ppl, tools, bfcl, docqa, ab"):
        compare_request.parse_tasks("ppl,speed")


def test_capped_tool_cases_are_drawn_across_the_categories():
    cases = compare_tasks.tool_cases(compare_request.TaskSettings(items=10))
    assert len(cases) == 10 and {c.category for c in cases} == set(toolseval.CATEGORIES)
    assert cases == compare_tasks.tool_cases(compare_request.TaskSettings(items=10))  # the same seed, the same items
    assert cases != compare_tasks.tool_cases(compare_request.TaskSettings(items=10, seed=1))


# -- the refusals, as a person meets them ----------------------------------------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--candidate", "smollm2-135m-instruct", "--candidate", "{tmp}"],
            ["is not a checkpoint (no config.json there)", "workbench quantize --out"],
        ),
        (
            ["--candidate", "smollm2-135m-instruct", "--candidate", "http://127.0.0.1:{port}"],
            ["does not answer as an OpenAI-compatible server", "Fix: start it"],
        ),
        (
            ["--candidate", "smollm2-135m-instruct", "--candidate", "{tmp}", "--tasks", "ppl,speed"],
            ["unknown task 'speed'", "Valid: ppl, tools, bfcl, docqa, ab"],
        ),
        (["--candidate", "smollm2-135m-instruct"], ["needs at least two candidates", "got 1"]),
        (
            ["--candidate", "smollm2-135m-instruct", "--candidate", "b=smollm2-135m-instruct", "--gpu", "RTX 9999"],
            ["GPU 'RTX 9999' is not in the catalog", "--gpu-total-gib"],
        ),
        (
            ["--candidate", "smollm2-135m-instruct", "--candidate", "b=smollm2-135m-instruct --max-num-seq 8"],
            ["'--max-num-seq' is not a vLLM serve flag"],
        ),
        (
            ["--candidate", "smollm2-135m-instruct", "--candidate", "b=smollm2-135m-instruct", "--tasks", "ab"],
            ["task ab needs an A/B config", "--ab-config"],
        ),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, args, words):
    args = [a.format(tmp=tmp_path, port=free_port()) for a in args]
    out = cli(*args, "--out", str(tmp_path / "report"), "--store", str(tmp_path / "store"), timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error: " in out.stderr and "Traceback" not in out.stderr  # ours, or argparse's usage error
    for word in words:
        assert word in out.stderr
    assert not (tmp_path / "report").exists() and not list((tmp_path / "store").glob("results/*"))


def test_every_task_with_its_defaults_passes_the_checks():
    """What bench/compare.py asks: all five tasks, no BFCL category named (all eight), the worked A/B example."""
    request = compare_request.CompareRequest(
        candidates=(
            compare_request.Candidate("a", "smollm2-135m-instruct"),
            compare_request.Candidate("b", "smollm2-135m-instruct"),
        ),
        tasks=tuple(compare_request.TASKS),
        settings=compare_request.TaskSettings(ab_config=str(abconfig.EXAMPLE)),
        gpu="RTX 3090",
    )
    compare_request.check(request)
    assert bfcl.check_categories(request.settings.bfcl_categories) == list(bfcl.CATEGORIES)


def test_an_unknown_gpu_plans_with_its_memory_given():
    request = compare_request.CompareRequest(
        candidates=(compare_request.Candidate("a", "x"),), gpu="RTX 9999", gpu_total_gib=22
    )
    compare.hardware.find_gpu(request.gpu, request.gpu_total_gib)  # what check() does: no error with the memory


# -- keys: what a change touches --------------------------------------------------------------------------
def checkpoint(folder: Path, weights: bytes = b"\0" * 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "workbench-manifest.json").write_text(json.dumps({"seconds": time.time()}))
    return folder


def test_the_content_hash_follows_the_weights_not_the_workbenchs_notes(tmp_path):
    folder = checkpoint(tmp_path / "ckpt")
    cache = {}
    first = compare.content_hash(folder, cache)
    (folder / "workbench-manifest.json").write_text("{}")  # the quantizer's note changes: vLLM loads the same
    assert compare.content_hash(folder, cache) == first
    (folder / "model.safetensors").write_bytes(b"\1" + b"\0" * 63)
    assert compare.content_hash(folder, cache) != first


def test_a_changed_setting_invalidates_only_what_it_touches(tmp_path):
    folder = checkpoint(tmp_path / "ckpt")
    request = compare_request.CompareRequest(
        candidates=(compare_request.Candidate("a", str(folder)),), tasks=("ppl", "tools")
    )
    ident = compare.identity(request.candidates[0], request, {})

    def keys(req, who=ident):
        return {step: compare.step_key(who, step, req) for step in ("ppl", "tools", "bench")}

    before = keys(request)
    fewer_tools = replace(request, settings=replace(request.settings, tools_design="constrained"))
    assert [s for s in before if keys(fewer_tools)[s] != before[s]] == ["tools"]
    other_load = replace(request, workload=bench.Workload(num_prompts=4))
    assert [s for s in before if keys(other_load)[s] != before[s]] == ["bench"]
    capped = replace(request, settings=replace(request.settings, items=5))
    assert [s for s in before if keys(capped)[s] != before[s]] == ["ppl", "tools", "bench"][:2]
    flagged = compare.identity(compare_request.Candidate("a", str(folder), ("--max-num-seqs", "4")), request, {})
    assert all(keys(request, flagged)[s] != before[s] for s in before)  # served otherwise: every result anew


# -- the report, from scripted outcomes -------------------------------------------------------------------
def outcome(name: str, pattern: str, nll: float, tok_s: list[float], fits: bool = True, error=None) -> dict:
    levels = [
        {
            "load": "concurrency 1",
            "ttft_ms": {"p50": 100.0},
            "tpot_ms": {"p50": 1000 / tok_s[0]},
            "output_tok_s": tok_s[0],
            "goodput_req_s": 1.0,
            "met_slo": 4,
            "completed": 4,
            "samples": {"ttft_ms": [99.0, 100.0, 101.0], "tpot_ms": [20.0, 21.0]},
            "repeat_ci": {
                "ttft_ms": {"runs": [100.0, 101.0]},
                "tpot_ms": {"runs": [1000 / t for t in tok_s]},
                "output_tok_s": {"runs": tok_s},
            },
        }
    ]
    results = (
        {}
        if error
        else {
            "ppl": {
                "kind": "ppl",
                "summary": {"ppl": math_exp(nll)},
                "items": [{"id": f"chunk-{i}", "nll": nll * 100 + i, "tokens": 100} for i in range(12)],
            },
            "tools": {"kind": "pass", "items": [{"id": f"case-{i}", "score": float(c)} for i, c in enumerate(pattern)]},
            "bench": {"kind": "bench", "report": {"levels": levels}},
        }
    )
    return {
        "candidate": {"name": name, "target": f"ckpt/{name}", "flags": [], "url": False},
        "identity": {},
        "results": results,
        "reused": [],
        "computed": list(results),
        "errors": {},
        "error": error,
        "log": None,
        "memory": {
            "planned": True,
            "gpu": "RTX 3090",
            "total_gib": 23.58,
            "quant": "gptq-int4",
            "context": 32768,
            "fits": fits,
            "reason": "",
            "weights_gib": 9.0 if fits else 27.5,
            "kv_cache_gib": 10.0,
            "kv_cache_tokens": 65_536,
            "max_concurrency": 2.0,
            "activation_gib": 1.0,
            "overheads_gib": 1.0,
            "requested_gib": 21.2,
        },
    }


def math_exp(x):
    import math

    return math.exp(x)


def scripted_report(*outcomes) -> CompareReport:
    request = compare_request.CompareRequest(
        candidates=tuple(compare_request.Candidate(o["candidate"]["name"], "x") for o in outcomes), gpu="RTX 3090"
    )
    return CompareReport(request.summary(), list(outcomes), run_id="r1", seconds=12.0, store="/tmp/store")


def test_the_report_opens_with_one_answer_per_candidate(tmp_path):
    report = scripted_report(
        outcome("bf16", "1" * 30 + "0" * 14, 2.0, [48, 49]),
        outcome("int4", "0" * 12 + "1" * 18 + "0" * 14, 2.0, [80, 82]),
        outcome("broken", "", 0, [1], error="vLLM exited with code 1 during start-up."),
    )
    md = report.to_markdown()
    head = md.split("## Quality per task")[0]
    assert "- **bf16**: the baseline. ppl 7.39; tools 68% of 44" in head
    assert "- **int4**: not good enough. tools: loss of 27.3 ±" in head and "output tok/s ×1.67" in head
    assert "- **broken**: failed. vLLM exited with code 1" in head
    assert "| tools | int4 | 44 | 68% → 41% |" in md and "| ppl | int4 | 12 |" in md
    files = report.save_report(tmp_path)
    assert sorted(p.name for p in files.values()) == ["compare.json", "report.csv", "report.html", "report.md"]
    page = files["html"].read_text()
    assert page.count("<svg") == 3 and "<table>" in page and "not good enough" in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page  # opens offline
    saved = json.loads(files["json"].read_text())
    assert [a["standing"] for a in saved["answers"]] == ["baseline", "not good enough", "failed"]
    assert saved["verdicts"]["int4"][1]["outcome"] == "loss" and saved["memory"]["int4"]["fits"] is True


# -- on the real engine -------------------------------------------------------------------------------------
def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_run_resumes_without_recomputing_what_it_had(engine, qwen3_engine, tmp_path):
    store, out = tmp_path / "store", tmp_path / "report"
    args = [
        "--candidate",
        f"bf16={engine.url}",
        "--candidate",
        f"qwen3={qwen3_engine.url},thinking=off",
        "--tasks",
        "ppl,tools",
        "--items",
        "8",
        "--num-prompts",
        "3",
        "--output-len",
        "8",
        "--repeats",
        "2",
        "--gpu",
        "RTX 3090",
        "--out",
        str(out),
        "--store",
        str(store),
    ]
    first = subprocess.Popen(
        [*WORKBENCH, "compare", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: list(store.glob("results/ppl-*.json")), 120, "the baseline's perplexity to be stored")
        os.killpg(first.pid, signal.SIGKILL)  # kill -9, mid-run: the baseline's tools cases are being asked
    finally:
        first.wait(30)
    kept = {p.name: p.stat().st_mtime_ns for p in store.glob("results/*.json")}
    assert kept and not (out / "compare.json").exists()

    second = cli(*args, "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    saved = json.loads((out / "compare.json").read_text())
    baseline = saved["candidates"][0]
    assert "ppl" in baseline["reused"] and "ppl" not in baseline["computed"]
    assert {p: kept[p] for p in kept} == {p: (store / "results" / p).stat().st_mtime_ns for p in kept}
    ppl_run = saved["results"]["bf16"]["ppl"]["run"]
    assert ppl_run != saved["run"] and saved["results"]["bf16"]["tools"]["run"] == saved["run"]
    assert [a["standing"] for a in saved["answers"]][0] == "baseline"
    by_task = {v["task"]: v for v in saved["verdicts"]["qwen3"]}
    assert by_task["ppl"]["outcome"] == "not comparable"  # another tokenizer: perplexities per different tokens
    assert by_task["tools"]["items"] == 8 and saved["memory"]["qwen3"]["planned"]

    third = cli(*[a if a != "3" else "2" for a in args], "--json")  # another workload: only the benchmark reruns
    assert third.returncode == 0, third.stderr[-3000:]
    again = json.loads((out / "compare.json").read_text())
    assert [(c["reused"], c["computed"]) for c in again["candidates"]] == [(["ppl", "tools"], ["bench"])] * 2


def test_a_candidate_whose_engine_fails_is_reported_and_the_others_go_on(engine, qwen3_engine, starts_vllm, tmp_path):
    """The broken checkpoint is served in its turn (notebook 09 serves two good ones the same way) and fails."""
    broken = checkpoint(tmp_path / "broken", (models.resolve_model(None) / "model.safetensors").read_bytes()[:64])
    (broken / "config.json").write_text(
        json.dumps({**models.read_config(models.resolve_model(None)), "architectures": ["NoSuchForCausalLM"]})
    )
    out = cli(
        "--candidate",
        f"served={engine.url}",
        "--candidate",
        f"broken={broken} --enforce-eager",
        "--candidate",
        f"after={qwen3_engine.url}",
        "--tasks",
        "ppl",
        "--items",
        "4",
        "--workload",
        "none",
        "--out",
        str(tmp_path / "report"),
        "--store",
        str(tmp_path / "s"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "broken · engine: failed" in out.stderr and "after · ppl: done" in out.stderr
    saved = json.loads((tmp_path / "report" / "compare.json").read_text())
    answers = {a["candidate"]: a for a in saved["answers"]}
    assert answers["broken"]["standing"] == "failed" and answers["after"]["standing"] != "failed"
    assert "architecture" in answers["broken"]["deciding"] and "broken.log" in answers["broken"]["deciding"]
    assert [v["task"] for v in saved["verdicts"]["after"]] == ["ppl"] and saved["verdicts"]["broken"] == []
    assert not (tmp_path / "s" / "engine.json").exists()  # its engine was stopped
