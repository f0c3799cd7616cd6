"""The bundled model: prepared once, found by name, never taken from a half-written folder."""

import json
import time

import pytest
from safetensors import safe_open

from workbench import models
from workbench.errors import ModelError


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
