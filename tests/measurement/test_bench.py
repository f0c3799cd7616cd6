"""The serving benchmark against the real engine: its figures agree with the server's own Prometheus
counters, and the CLI's JSON has every figure per load level."""

import json
import os
import re
import statistics
import subprocess
import sys
import urllib.request

import pytest

from workbench.errors import ConfigError
from workbench.measurement import bench, bench_report, placement
from workbench.serving import hardware

COUNTERS = {
    "prompt_tokens": "vllm:prompt_tokens_total",
    "generation_tokens": "vllm:generation_tokens_total",
    "requests": "vllm:request_success_total",
}


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
    report = bench.run(
        engine.url,
        bench.Workload(num_prompts=5, input_len=48, output_len=12),
        concurrency=[1, 3],
        on_progress=lambda p: heard.append(str(p)),
        warmup=1,
    )
    after = counters(engine.url)
    warmups = 2  # one unmeasured request before each level: sent, and left out of every figure
    levels = report["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 3]
    assert (
        heard[0] == "concurrency 1 (level 1 of 2): 1/5 requests"
        and heard[-1] == "concurrency 3 (level 2 of 2): 5/5 requests"
    )
    assert all(len(lv["samples"]["ttft_ms"]) == len(lv["samples"]["e2e_ms"]) == 5 for lv in levels)
    assert all(lv["completed"] == 5 and lv["failed"] == 0 for lv in levels), levels
    assert after["requests"] - before["requests"] == 10 + warmups
    assert (
        after["prompt_tokens"] - before["prompt_tokens"] - warmups * 48
        == sum(lv["input_tokens"] for lv in levels)
        == 10 * 48
    )
    assert (
        after["generation_tokens"] - before["generation_tokens"] - warmups * 12
        == sum(lv["output_tokens"] for lv in levels)
        == 10 * 12
    )  # ignore_eos: exactly output_len each
    for lv in levels:  # the client's own counts agree with the server's usage, request by request
        assert lv["token_check"] == {"requests": 5, "prompt_differs": 0, "output_differs": 0, "chunks_differ": 0}
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["vllm_build"] == hardware.vllm_build()
    for lv in levels:
        assert 0 < lv["ttft_ms"]["p50"] <= lv["e2e_ms"]["p50"] and lv["tpot_ms"]["p50"] > 0 and lv["itl_ms"]["p50"] > 0
        assert lv["output_tok_s"] == pytest.approx(lv["output_tokens"] / lv["duration_s"], rel=1e-3)
        assert lv["goodput_req_s"] == lv["req_s"]  # no SLO given: every completed request counts
    device = engine.report.device  # the running engine's: cpu here, gpu on a CUDA machine
    assert report["server"]["device"] == device and ("CPU build" in report["server"]["bound"]) == (device == "cpu")


@pytest.mark.slow
def test_cli_json_per_load_level_with_slos_and_exports(engine, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "bench",
            "--url",
            engine.url,
            "--concurrency",
            "1,2",
            "--num-prompts",
            "4",
            "--input-len",
            "32",
            "--output-len",
            "8",
            "--slo-ttft",
            "1ms",
            "--slo-tpot-ms",
            "100000",
            "--json",
            "--save",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WORKBENCH_URL": ""},
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["server"]["model"] == "smollm2-135m-instruct" and report["server"]["max_model_len"] == 4096
    assert report["server"]["vllm_version"] and report["slo"] == {"ttft_ms": 1.0, "tpot_ms": 100000.0}
    for level in report["levels"]:
        for metric in bench_report.METRICS:
            assert set(level[metric]) == {"mean", "p50", "p90", "p99"}
        assert {"output_tok_s", "req_s", "goodput_req_s", "completed", "failed"} <= set(level)
        assert level["goodput_req_s"] == 0  # no request's first token came within 1 ms
    assert json.loads((tmp_path / "bench.json").read_text())["levels"] == report["levels"]
    assert (tmp_path / "bench.csv").read_text().splitlines()[0].startswith("concurrency,request_rate,completed")


def test_random_prompts_are_the_ones_vllms_benchmark_sends_for_the_same_seed(client):
    """One workload for both tools: the prompt decides what the model writes back, and with it the server's work."""
    from vllm.benchmarks.datasets import RandomDataset
    from vllm.tokenizers import get_tokenizer

    ours = bench.make_prompts(client, bench.Workload(num_prompts=6, input_len=40, output_len=8, seed=3), 4096)
    theirs = RandomDataset(random_seed=3).sample(
        get_tokenizer(client.model_card()["root"]), 6, input_len=40, output_len=8
    )
    assert [p.prompt for p in ours] == [s.prompt for s in theirs] and all(p.tokens == 40 for p in ours)
    assert bench._prompts_from(bench.Workload(seed=3), ours).startswith("vLLM's random dataset, seed 3")


def test_random_prompts_fall_back_to_words_where_the_tokenizer_is_elsewhere(monkeypatch, client):
    """A server on another host: its model's folder is not here, so the words the server's tokenizer cuts, and said."""
    real = client.model_card()
    monkeypatch.setattr(client, "model_card", lambda: {**real, "root": "/elsewhere/not-here"})
    prompts = bench.make_prompts(client, bench.Workload(num_prompts=2, input_len=24, output_len=4), 4096)
    assert all(isinstance(p.prompt, list) and len(p.prompt) == 24 for p in prompts)
    assert "not vLLM's own" in bench._prompts_from(bench.Workload(), prompts)


def test_a_request_rate_and_bad_values_are_checked_before_any_request():
    with pytest.raises(ConfigError, match="request rate -1 is not positive"):
        bench.run("http://127.0.0.1:9", bench.Workload(), rate=-1)
    with pytest.raises(ConfigError, match="'2' has no unit"):
        bench.parse_duration_ms("2", "--slo-ttft")
    assert bench.parse_duration_ms("1.5 s", "x") == 1500 and bench.parse_duration_ms("80ms", "x") == 80
    assert bench.parse_concurrency("1,2,4") == [1, 2, 4]
    slo = bench_report.SLO(ttft_ms=500, tpot_ms=50)
    fast = bench_report.RequestResult(ok=True, output_tokens=11, ttft_s=0.2, e2e_s=0.6)  # TPOT 40 ms
    slow = bench_report.RequestResult(ok=True, output_tokens=11, ttft_s=0.2, e2e_s=1.2)  # TPOT 100 ms
    assert slo.met(fast) and not slo.met(slow) and not slo.met(bench_report.RequestResult())


def test_a_request_rate_sends_on_vllms_schedule_so_the_achieved_rate_does_not_drift_with_the_seed():
    for seed in range(5):
        times = bench.arrival_times(16, rate=2.0, seed=seed)
        assert times == sorted(times) and times[0] > 0  # like vLLM's, the first request waits its own gap too
        assert times[-1] == pytest.approx(8.0)  # 16 requests at 2/s: the last goes at 8 s, whatever the draws
    assert bench.arrival_times(16, 2.0, seed=0) != bench.arrival_times(16, 2.0, seed=1)
    bursty, even = (bench.arrival_times(400, 2.0, burstiness=b, seed=0) for b in (0.2, 5.0))
    spread = [statistics.pstdev(b - a for a, b in zip(t, t[1:])) for t in (bursty, even)]
    assert spread[0] > 3 * spread[1]  # burstiness below 1 clumps requests; above 1 evens them out
    assert bench.arrival_times(3, None) == [0.0, 0.0, 0.0]  # a concurrency level sends everything at once


def test_a_request_rate_sends_at_the_very_times_vllms_benchmark_draws_for_the_same_seed(monkeypatch):
    """vLLM's own get_request, run on a virtual clock: both tools must send on one schedule, or a 16-request Poisson
    comparison measures two different loads (5 % apart on median TPOT, measured)."""
    import asyncio

    import numpy as np
    from vllm.benchmarks import serve

    clock = [1000.0]

    async def sleep(seconds):
        clock[0] += seconds

    monkeypatch.setattr(serve.time, "time", lambda: clock[0])
    monkeypatch.setattr(serve.asyncio, "sleep", sleep)

    async def vllms(n, rate, burstiness, seed):
        np.random.seed(seed)  # what serve.main_async does first
        sent = []
        async for _request, _rate in serve.get_request(list(range(n)), rate, burstiness):
            sent.append(clock[0] - 1000.0)
        return sent

    for n, rate, burstiness, seed in [(16, 0.5, 1.0, 0), (16, 0.5, 1.0, 3), (40, 4.0, 0.5, 7)]:
        clock[0] = 1000.0
        theirs = asyncio.run(vllms(n, rate, burstiness, seed))
        assert bench.arrival_times(n, rate, burstiness, seed) == pytest.approx(theirs, abs=1e-9)


@pytest.mark.slow
def test_a_sweep_climbs_until_throughput_stops_rising_and_repeats_give_intervals(engine):
    workload = bench.Workload(num_prompts=4, input_len=32, output_len=8)
    swept = bench.run(engine.url, workload, concurrency="sweep", warmup=0)
    loads = [lv["concurrency"] for lv in swept["levels"]]
    assert loads[0] == 1 and loads == [2**i for i in range(len(loads))] and swept["profile"] == "sweep"
    gains = [b["output_tok_s"] / a["output_tok_s"] for a, b in zip(swept["levels"], swept["levels"][1:])]
    assert all(g >= 1 + bench.SWEEP_GAIN for g in gains[:-1])  # it went on while throughput rose by 10 % or more
    assert len(loads) == 1 + len(gains) and (gains[-1] < 1 + bench.SWEEP_GAIN or loads[-1] * 2 > bench.SWEEP_MAX)
    repeated = bench.run(engine.url, workload, concurrency=[2], repeats=3, warmup=0)
    level = repeated["levels"][0]
    assert level["completed"] == 12 and len(level["samples"]["ttft_ms"]) == 12  # every run's requests
    ci = level["repeat_ci"]["ttft_ms"]
    assert len(ci["runs"]) == 3 and ci["ci_low"] <= ci["mean"] <= ci["ci_high"]
    assert bench.parse_concurrency("sweep") == "sweep"


def test_cpu_lists_read_and_write_as_taskset_takes_them():
    assert placement.parse_cpus("0") == {0} and placement.parse_cpus("0-1") == {0, 1}
    assert placement.cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    for bad in ("", "x", "0-", str(os.cpu_count())):
        with pytest.raises(ConfigError, match="is not a list of this machine's CPUs"):
            placement.parse_cpus(bad)
    assert placement.split_cpus(range(8)) == ({0, 1}, {2, 3, 4, 5, 6, 7}) and placement.split_cpus([0, 1]) == ({0}, {1})


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning apart needs two CPUs")
def test_a_server_pinned_apart_is_reported_apart_and_one_sharing_cpus_is_not(tmp_path):
    """A real process stands in for the server's (given by pid, as an engine started here is): started on CPU 1,
    it inherits CPU 1, and a client on CPU 0 is apart from it; a client on both CPUs overlaps it."""
    one, other = sorted(os.sched_getaffinity(0))[:2]
    with placement.pinned({other}):
        server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert os.sched_getaffinity(server.pid) == {other}  # it inherited the CPUs it was started on
        with placement.pinned({one}):
            apart = placement.placement("http://127.0.0.1:9", server_pid=server.pid)
        assert apart["overlap"] == [] and apart["server_cpus"] == [other] and apart["client_cpus"] == [one]
        assert apart["note"] == f"client on CPUs {one}, server on CPUs {other}: pinned apart"
        shared = placement.placement("http://127.0.0.1:9", server_pid=server.pid)
        assert shared["overlap"] == [other] and "the load generator takes CPU from the server" in shared["note"]
        assert "`taskset -c" in shared["note"] and "--client-cpus" in shared["note"]
        assert "GPU" not in shared["note"]
        on_gpu = placement.placement("http://127.0.0.1:9", server_pid=server.pid, gpu_host=True)
        assert "On a GPU host this matters far less" in on_gpu["note"]
    finally:
        server.kill()
        server.wait()
    remote = placement.placement("http://10.0.0.7:8000/v1")
    assert remote["same_host"] is False and "on another host" in remote["note"]


def test_a_bench_finds_the_server_by_its_port_and_says_the_cpus_overlap(engine):
    report = bench.run(engine.url, bench.Workload(num_prompts=1, input_len=16, output_len=4), warmup=0)
    where = report["placement"]
    assert where["same_host"] and where["server_pids"]  # whoever listens on the URL's port, and its children
    assert set(where["overlap"]) == set(where["client_cpus"]) & set(where["server_cpus"]) != set()  # nobody pinned
    assert f"CPUs: {where['note']}" in report.to_text().splitlines()
