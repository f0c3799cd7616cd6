"""The serving benchmark against the real engine: its figures agree with the server's own Prometheus
counters, and the CLI's JSON has every figure per load level."""

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

from workbench import bench
from workbench.errors import ConfigError

COUNTERS = {"prompt_tokens": "vllm:prompt_tokens_total", "generation_tokens": "vllm:generation_tokens_total",
            "requests": "vllm:request_success_total"}


def counters(url: str) -> dict[str, float]:
    """The server's counters, summed over their labels."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    out = {}
    for key, name in COUNTERS.items():
        out[key] = sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))
    return out


@pytest.mark.slow
def test_figures_agree_with_the_servers_prometheus_counters(engine):
    before = counters(engine.url)
    heard = []
    report = bench.run(engine.url, bench.Workload(num_prompts=5, input_len=48, output_len=12), concurrency=[1, 3],
                       on_progress=lambda p: heard.append(str(p)))
    after = counters(engine.url)
    levels = report["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 3]
    assert heard[0] == "concurrency 1 (level 1 of 2): 1/5 requests" and heard[-1] == "concurrency 3 (level 2 of 2): 5/5 requests"
    assert all(len(lv["samples"]["ttft_ms"]) == len(lv["samples"]["e2e_ms"]) == 5 for lv in levels)
    assert all(lv["completed"] == 5 and lv["failed"] == 0 for lv in levels), levels
    assert after["requests"] - before["requests"] == 10
    assert after["prompt_tokens"] - before["prompt_tokens"] == sum(lv["input_tokens"] for lv in levels) == 10 * 48
    assert after["generation_tokens"] - before["generation_tokens"] == sum(lv["output_tokens"] for lv in levels) \
        == 10 * 12  # ignore_eos: exactly output_len each
    for lv in levels:
        assert 0 < lv["ttft_ms"]["p50"] <= lv["e2e_ms"]["p50"] and lv["tpot_ms"]["p50"] > 0 and lv["itl_ms"]["p50"] > 0
        assert lv["output_tok_s"] == pytest.approx(lv["output_tokens"] / lv["duration_s"], rel=1e-3)
        assert lv["goodput_req_s"] == lv["req_s"]  # no SLO given: every completed request counts
    assert report["server"]["device"] == "cpu" and "CPU build" in report["server"]["bound"]


@pytest.mark.slow
def test_cli_json_per_load_level_with_slos_and_exports(engine, tmp_path):
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "bench", "--url", engine.url, "--concurrency", "1,2",
                          "--num-prompts", "4", "--input-len", "32", "--output-len", "8", "--slo-ttft", "1ms",
                          "--slo-tpot-ms", "100000", "--json", "--save", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "WORKBENCH_URL": ""})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["server"]["model"] == "smollm2-135m-instruct" and report["server"]["max_model_len"] == 4096
    assert report["server"]["vllm_version"] and report["slo"] == {"ttft_ms": 1.0, "tpot_ms": 100000.0}
    for level in report["levels"]:
        for metric in bench.METRICS:
            assert set(level[metric]) == {"mean", "p50", "p90", "p99"}
        assert {"output_tok_s", "req_s", "goodput_req_s", "completed", "failed"} <= set(level)
        assert level["goodput_req_s"] == 0  # no request's first token came within 1 ms
    assert json.loads((tmp_path / "bench.json").read_text())["levels"] == report["levels"]
    assert (tmp_path / "bench.csv").read_text().splitlines()[0].startswith("concurrency,request_rate,completed")


def test_a_request_rate_and_bad_values_are_checked_before_any_request():
    with pytest.raises(ConfigError, match="request rate -1 is not positive"):
        bench.run("http://127.0.0.1:9", bench.Workload(), rate=-1)
    with pytest.raises(ConfigError, match="'2' has no unit"):
        bench.parse_duration_ms("2", "--slo-ttft")
    assert bench.parse_duration_ms("1.5 s", "x") == 1500 and bench.parse_duration_ms("80ms", "x") == 80
    assert bench.parse_concurrency("1,2,4") == [1, 2, 4]
    slo = bench.SLO(ttft_ms=500, tpot_ms=50)
    fast = bench.RequestResult(ok=True, output_tokens=11, ttft_s=0.2, e2e_s=0.6)  # TPOT 40 ms
    slow = bench.RequestResult(ok=True, output_tokens=11, ttft_s=0.2, e2e_s=1.2)  # TPOT 100 ms
    assert slo.met(fast) and not slo.met(slow) and not slo.met(bench.RequestResult())
