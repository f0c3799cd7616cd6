"""The CPU build's plan: whole blocks of 128 tokens in VLLM_CPU_KVCACHE_SPACE, and the line that starts it."""

import pytest

from workbench.errors import ConfigError
from workbench.planner import budget
from workbench.planner.cpu_plan import cpu_plan
from workbench.serving import models


def test_the_cpu_build_holds_whole_blocks_of_its_space_and_says_how_to_start_it():
    spec = models.CATALOG["smollm2-135m-instruct"]
    two = cpu_plan(spec, 2, 4096)
    assert two.kv_cache_tokens == budget.cpu_kv_cache_tokens(spec, 2) == 93_184  # ⌊2 × 2³⁰ / (128 × 23,040)⌋ × 128
    assert two.max_concurrency == round(93_184 // 128 / (4096 // 128), 2) and two.fits
    assert two.as_dict()["env"] == {"VLLM_CPU_KVCACHE_SPACE": "2"}
    assert two.flags.command().startswith("VLLM_CPU_KVCACHE_SPACE=2 python -m vllm.entrypoints.openai.api_server")
    assert not cpu_plan(spec, 1, 65_536).fits  # 46,592 tokens: not one request of 64K


@pytest.mark.parametrize("space", [1.5, 0, -2])
def test_a_space_that_is_not_whole_gib_is_refused(space):
    with pytest.raises(ConfigError, match=r"is not a whole, positive number of GiB .*int\(\)"):
        cpu_plan(models.CATALOG["smollm2-135m-instruct"], space, 4096)
