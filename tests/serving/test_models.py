"""The bundled model: prepared once, found by name, never taken from a half-written folder."""

import json
import time

import pytest
from safetensors import safe_open

from workbench.errors import ConfigError, ModelError
from workbench.serving import models


@pytest.fixture(scope="module")
def bundled():
    return models.prepare_bundled_model()


def test_bundled_model_is_a_complete_hf_folder(bundled):
    config = json.loads((bundled / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_key_value_heads"]) == (576, 30, 3)
    with safe_open(bundled / "model.safetensors", "pt") as f:
        assert "model.embed_tokens.weight" in f.keys()
        assert str(f.get_slice("model.embed_tokens.weight").get_dtype()) == "BF16"
    template = (bundled / "chat_template.jinja").read_text()
    assert "<|im_start|>" in template


def test_second_call_is_a_no_op_under_a_second(bundled):
    mtime = (bundled / "model.safetensors").stat().st_mtime
    start = time.perf_counter()
    assert models.prepare_bundled_model() == bundled
    assert time.perf_counter() - start < 1.0
    assert (bundled / "model.safetensors").stat().st_mtime == mtime


def test_the_name_resolves_everywhere_a_path_is_accepted(bundled):
    assert models.resolve_model("smollm2-135m-instruct") == bundled
    assert models.resolve_model(None) == bundled
    assert models.resolve_model(str(bundled)) == bundled


def test_unknown_name_lists_what_is_valid():
    with pytest.raises(ModelError) as info:
        models.resolve_model("qwen3-14b-that-is-not-here")
    assert "'qwen3-14b-that-is-not-here'" in str(info.value) and "smollm2-135m-instruct" in str(info.value)


def test_cache_dir_is_overridable(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    assert models.bundled_model_dir() == tmp_path / "models" / "smollm2-135m-instruct"
    assert not models.bundled_model_state().prepared


def test_interrupted_conversion_leaves_nothing_that_passes_for_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))

    def fake_crash_after_writing_config(gguf, out):
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert_gguf", fake_crash_after_writing_config)
    with pytest.raises(KeyboardInterrupt):
        models.prepare_bundled_model()
    assert not models.is_complete(models.bundled_model_dir())
    assert not models.bundled_model_state().prepared
    assert not list(tmp_path.glob("models/.*tmp*")), "the temporary folder was left behind"


@pytest.mark.slow
def test_a_half_written_folder_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    folder = models.bundled_model_dir()
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"half": "written"}')  # no completion marker
    path = models.prepare_bundled_model()
    assert path == folder and models.is_complete(folder)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    assert not list(tmp_path.glob("models/.*tmp*"))


# -- one model reference: folder, bundled name, catalog name or Hub id ------------------------------------------
def test_a_reference_is_read_as_a_folder_the_bundled_name_a_catalog_name_or_a_hub_id(bundled, tmp_path):
    assert models.hub_id(str(bundled)) is None and models.hub_id(models.BUNDLED_MODEL) is None
    assert models.hub_id("Qwen3-14B") == "Qwen/Qwen3-14B" and models.hub_id("qwen3-14b") == "Qwen/Qwen3-14B"
    assert models.hub_id("someone/their-model") == "someone/their-model"
    assert models.served_name("someone/their-model") == "someone/their-model"
    (tmp_path / "org" / "name").mkdir(parents=True)  # a relative folder that reads like an id is the folder
    assert models.hub_id(str(tmp_path / "org" / "name")) is None


@pytest.mark.parametrize("reference", ["Qwen//x", "Qwen/x/y", "-bad/name", "org/na me"])
def test_a_malformed_id_is_refused_before_any_request(reference):
    with pytest.raises(ConfigError, match="neither a Hugging Face id nor a folder"):
        models.find_model(reference)


def _config(**changes) -> dict:
    base = {
        "model_type": "llama",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
    }
    return {**base, **changes}


def test_the_planner_reads_moe_mla_head_dim_and_sliding_windows_from_config_json():
    from workbench.planner import budget

    mixtral = models.spec_from_config(
        "mixtral", _config(model_type="mixtral", num_local_experts=8, num_experts_per_tok=2)
    )
    assert (mixtral.num_experts, mixtral.experts_per_token, mixtral.moe_intermediate_size) == (8, 2, 14336)
    assert mixtral.total_params() == pytest.approx(46.7e9, rel=0.01)  # Mixtral-8x7B: 46.7B parameters
    gemma = models.spec_from_config(
        "gemma", _config(model_type="gemma2", head_dim=256, hidden_size=3584, num_attention_heads=16)
    )
    assert gemma.head_dim == 256 and budget.kv_bytes_per_token(gemma) == 2 * 32 * 8 * 256 * 2
    swa = models.spec_from_config("swa", _config(layer_types=["sliding_attention", "full_attention"] * 16))
    assert swa.sliding_window
    deepseek = models.spec_from_config(
        "DeepSeek-V2-Lite",
        _config(
            model_type="deepseek_v2",
            num_hidden_layers=27,
            hidden_size=2048,
            intermediate_size=10944,
            num_attention_heads=16,
            num_key_value_heads=16,
            vocab_size=102400,
            n_routed_experts=64,
            n_shared_experts=2,
            num_experts_per_tok=6,
            moe_intermediate_size=1408,
            kv_lora_rank=512,
            qk_rope_head_dim=64,
        ),
    )
    catalog = models.CATALOG["DeepSeek-V2-Lite"]
    assert (deepseek.num_experts, deepseek.experts_per_token, deepseek.is_mla) == (
        catalog.num_experts,
        catalog.experts_per_token,
        True,
    )
    assert budget.kv_bytes_per_token(deepseek) == budget.kv_bytes_per_token(catalog)


def test_a_config_without_the_sizes_that_decide_memory_is_refused_naming_them():
    with pytest.raises(ConfigError, match="has no num_hidden_layers, hidden_size"):
        models.spec_from_config("vision-tower", {"model_type": "siglip"})
