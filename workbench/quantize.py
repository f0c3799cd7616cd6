"""quantize.py turns a bf16 checkpoint into a GPTQ (or round-to-nearest) INT4/INT8 checkpoint that
vLLM serves, and measures what it cost. GPTQModel 7.6 does the work in a child process (so that a
run can be cancelled and its memory is returned); this module checks the settings before any work,
prepares calibration text, streams per-layer progress, and moves the result into place only when it
is complete, with a manifest. It knows nothing about serving: quality.py measures what a checkpoint cost through the served engine.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from pydoc_data.topics import topics

from workbench import hardware, memory, models, processes
from workbench import settings as settings_module
from workbench.errors import ConfigError, WorkbenchError

KERNEL_GROUP_SIZES = (128, 64, 32)  # what vLLM's GPTQ kernels take, besides -1 (per channel)
MANIFEST = "workbench-manifest.json"
# GPTQModel prints "Quantizing layer 3 of 29" (to a file) or "... in layer [3 of 29]" (to a terminal)
_PROGRESS = re.compile(r"[Qq]uantizing (?:\S+ in )?layer\s*\[?(\d+) of (\d+)")


@dataclass(frozen=True)
class QuantizeSettings:
    method: str = "gptq"  # "gptq" or "rtn"
    bits: int = 4
    group_size: int = 64
    desc_act: bool = False
    sym: bool = True
    damp_percent: float = 0.05
    samples: int = 32
    seq_len: int = 512  # tokens per calibration sample
    holdout_fraction: float = 0.2

    def __post_init__(self):
        if self.method not in ("gptq", "rtn"):
            raise ConfigError(f"method={self.method!r} is not one of 'gptq', 'rtn'.")
        if self.bits not in (4, 8):
            raise ConfigError(f"bits={self.bits} is not one of 4, 8 (vLLM's GPTQ kernels).")
        if self.group_size != -1 and self.group_size <= 0:
            raise ConfigError(f"group_size={self.group_size} must be positive or -1 (per channel).")
        if not 0 < self.damp_percent < 1:
            raise ConfigError(f"damp_percent={self.damp_percent} is outside (0, 1); 0.01-0.1 is usual.")
        if self.samples < 1 or self.seq_len < 16:
            raise ConfigError(f"samples={self.samples}, seq_len={self.seq_len}: need at least 1 sample of 16 tokens.")
        if not 0 < self.holdout_fraction < 1:
            raise ConfigError(f"holdout_fraction={self.holdout_fraction} is outside (0, 1).")


# ---------------------------------------------------------------------------------------------
# Checks before any work
def quantized_input_widths(spec: models.ModelSpec) -> dict[str, int]:
    """Input width of every kind of layer GPTQ quantizes (the dimension groups run along)."""
    widths = {"q/k/v/gate/up_proj": spec.hidden_size, "o_proj": spec.num_heads * spec.head_dim}
    widths["down_proj"] = spec.moe_intermediate_size if spec.num_experts else spec.intermediate_size
    return widths


def valid_group_sizes(spec: models.ModelSpec) -> list[int]:
    widths = quantized_input_widths(spec).values()
    return [g for g in KERNEL_GROUP_SIZES if all(w % g == 0 for w in widths)] + [-1]


def check_group_size(spec: models.ModelSpec, group_size: int) -> None:
    """Refuse a group size that does not divide every quantized layer's input width. GPTQModel
    would write the checkpoint anyway and vLLM would die loading it with a bare AssertionError."""
    if group_size == -1:
        return
    widths = quantized_input_widths(spec)
    bad = {name: w for name, w in widths.items() if w % group_size}
    if bad:
        valid = valid_group_sizes(spec)
        raise ConfigError(
            f"group_size={group_size} does not divide {', '.join(f'{n} ({w})' for n, w in bad.items())} of "
            f"{spec.name}. Valid: {', '.join(map(str, valid))}. Fix: use --group-size {valid[0]} "
            "(the largest valid one)."
        )


@dataclass(frozen=True)
class MachineCheck:
    ok: bool
    peak_ram_gib: float
    available_ram_gib: float
    reason: str


def check_machine(spec: models.ModelSpec, settings: QuantizeSettings, available_ram_gib: float | None = None) -> MachineCheck:
    """Peak RAM of layer-by-layer GPTQ on the CPU: the bf16 model, one layer's Hessians
    (in_features² fp32 per linear) and the calibration activations (fp32, in and out) of one layer."""
    model_bytes = memory.weight_bytes(spec, "bf16")
    widths = quantized_input_widths(spec)
    hessians = 4 * (4 * widths["q/k/v/gate/up_proj"] ** 2 + widths["o_proj"] ** 2 + widths["down_proj"] ** 2)
    activations = 4 * 2 * settings.samples * settings.seq_len * max(spec.hidden_size, widths["down_proj"])
    peak = (model_bytes + hessians + activations) * 1.3 + 1.5 * memory.GIB  # torch + GPTQModel overhead
    available = available_ram_gib if available_ram_gib is not None else (hardware.machine_facts().memory_gib or 0)
    peak_gib = peak / memory.GIB
    if peak_gib > available:
        return MachineCheck(False, round(peak_gib, 2), available,
                            f"quantizing {spec.name} needs about {peak_gib:.1f} GiB of RAM and this machine has "
                            f"{available:.1f} GiB. Fix: fewer or shorter calibration samples, or a bigger machine "
                            "(Qwen3-14B wants about 40 GiB of RAM, or a 24 GB GPU with GPTQModel's offloading).")
    return MachineCheck(True, round(peak_gib, 2), available, f"about {peak_gib:.1f} GiB of {available:.1f} GiB RAM")


# ---------------------------------------------------------------------------------------------
# Calibration text
def default_text() -> str:
    """Python's own reference documentation (pydoc_data), present in every CPython."""
    return "\n\n".join(topics[key] for key in sorted(topics))


def read_texts(paths: list[str | Path]) -> str:
    """.txt as is; .jsonl takes each line's "text" field."""
    parts = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"calibration file {str(path)!r} does not exist.")
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        parts.append(json.loads(line)["text"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise ConfigError(f"{path}:{n} is not a JSON object with a \"text\" field.") from None
        elif path.suffix in (".txt", ".md", ""):
            parts.append(path.read_text())
        else:
            raise ConfigError(f"calibration file {str(path)!r}: use .txt or .jsonl (lines of {{\"text\": ...}}).")
    return "\n\n".join(parts)


@dataclass(frozen=True)
class Calibration:
    samples: list[str]
    heldout: str
    tokens_per_sample: int


def split_calibration(text: str, tokenizer, settings: QuantizeSettings) -> Calibration:
    """`samples` pieces of `seq_len` tokens for calibration, then a held-out tail for perplexity."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []
    need = settings.samples * settings.seq_len
    heldout_tokens = max(settings.seq_len, int(need * settings.holdout_fraction / (1 - settings.holdout_fraction)))
    if len(ids) < need + heldout_tokens:
        raise ConfigError(
            f"the calibration text has {len(ids):,} tokens; {settings.samples} samples × {settings.seq_len} tokens "
            f"plus {heldout_tokens:,} held out need {need + heldout_tokens:,}. Fix: give more text, or lower "
            "--samples / --seq-len."
        )
    samples = [tokenizer.decode(ids[i * settings.seq_len:(i + 1) * settings.seq_len]) for i in range(settings.samples)]
    heldout = tokenizer.decode(ids[need:need + heldout_tokens])
    return Calibration(samples, heldout, settings.seq_len)


# ---------------------------------------------------------------------------------------------
# The run
@dataclass
class Progress:
    layer: int = 0
    layers: int = 0
    elapsed_s: float = 0.0
    stage: str = "starting"

    @property
    def fraction(self) -> float:
        return self.layer / self.layers if self.layers else 0.0

    @property
    def eta_s(self) -> float | None:
        if not self.layer:
            return None
        return self.elapsed_s / self.layer * (self.layers - self.layer)


@dataclass(frozen=True)
class QuantizeResult:
    out: Path
    seconds: float
    source_bytes: int
    out_bytes: int
    manifest: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """What `workbench quantize --json` prints."""
        return {"out": str(self.out), "seconds": round(self.seconds, 1), "source_bytes": self.source_bytes,
                "out_bytes": self.out_bytes, "settings": self.manifest["settings"]}

    def to_text(self) -> str:
        return (f"wrote {self.out} in {self.seconds:.0f} s: {self.source_bytes / 1e6:.0f} MB -> "
                f"{self.out_bytes / 1e6:.0f} MB. Serve it: workbench serve --model {self.out}")

    def _repr_markdown_(self) -> str:
        settings = ", ".join(f"{k} {v}" for k, v in self.manifest.get("settings", {}).items())
        return (f"**{Path(self.out).name}** in {self.seconds:.0f} s: {self.source_bytes / 1e6:.0f} MB → "
                f"{self.out_bytes / 1e6:.0f} MB ({self.out_bytes / self.source_bytes:.0%})"
                + (f"<br>{settings}" if settings else ""))


class Cancelled(WorkbenchError):
    """The run was cancelled; nothing was written where the checkpoint was expected."""


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))


def quantize(model: str, out: str | Path, settings: QuantizeSettings | None = None,
             calibration_text: str | None = None, on_progress: Callable[[Progress], None] | None = None,
             cancel: threading.Event | None = None, log_path: str | Path | None = None) -> QuantizeResult:
    """Quantize `model` into `out`. Checks first; the output appears only when complete. `calibration_text` is
    the text itself, a list of .txt/.jsonl files to read it from, or None for Python's own docs."""
    from transformers import AutoTokenizer

    settings = settings or QuantizeSettings()
    source = models.resolve_model(model)
    spec = models.spec_from_folder(source)
    if spec.declared_quant:
        raise ConfigError(f"{source} is already quantized ({spec.declared_quant}); quantize the bf16 checkpoint.")
    check_group_size(spec, settings.group_size)
    machine = check_machine(spec, settings)
    if not machine.ok:
        raise ConfigError(machine.reason)
    out = Path(out).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output folder {str(out)!r} exists and is not empty. Fix: choose a new --out, or delete it.")
    tokenizer = AutoTokenizer.from_pretrained(source)
    if isinstance(calibration_text, (list, tuple)):
        calibration_text = read_texts(calibration_text)
    calibration = split_calibration(calibration_text if calibration_text is not None else default_text(),
                                    tokenizer, settings)

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    job = {"source": str(source), "out": str(tmp), "settings": asdict(settings), "samples": calibration.samples}
    (tmp / "job.json").write_text(json.dumps(job))
    if log_path is None:
        log_path = settings_module.cache_dir() / "logs" / f"quantize-{out.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GPTQMODEL_CPU_WORKERS=os.environ.get("GPTQMODEL_CPU_WORKERS", "2"), PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    progress = Progress(layers=spec.num_layers, stage="loading")
    with open(log_path, "wb") as log:
        # GPTQModel writes logs/gptq_log_*.log under its working directory: keep them with ours
        proc = subprocess.Popen([sys.executable, "-m", "workbench.quantize", str(tmp / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=log_path.parent, start_new_session=True)
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.wait(0.5):
                    raise Cancelled(f"quantization of {source.name} was cancelled; {out} was not written.")
                if cancel is None:
                    time.sleep(0.5)
                progress = _read_progress(log_path, progress, time.perf_counter() - started)
                if on_progress:
                    on_progress(progress)
        except BaseException:
            processes.stop_group(proc, timeout_s=10)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-25:])
        raise WorkbenchError(f"GPTQModel exited with code {proc.returncode}; nothing was written to {out}.\n{tail}")
    seconds = time.perf_counter() - started
    (tmp / "job.json").unlink()
    manifest = {
        "source": str(source), "source_name": models.served_name(model), "settings": asdict(settings),
        "calibration": {"samples": len(calibration.samples), "tokens_per_sample": calibration.tokens_per_sample},
        "versions": {d: hardware.package_version(d) for d in ("gptqmodel", "transformers", "torch")},
        "seconds": round(seconds, 1), "source_bytes": folder_bytes(source), "out_bytes": folder_bytes(tmp),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (tmp / "heldout.txt").write_text(calibration.heldout)
    if out.exists():
        out.rmdir()  # empty, checked above
    os.replace(tmp, out)
    if on_progress:
        on_progress(Progress(spec.num_layers, spec.num_layers, seconds, "done"))
    return QuantizeResult(out, seconds, manifest["source_bytes"], manifest["out_bytes"], manifest)


def cached(model: str, settings: QuantizeSettings | None = None, on_progress=None) -> QuantizeResult:
    """The checkpoint `quantize(model, ..., settings)` makes with the default calibration text, made once into
    the cache (checkpoints/) and reused while the settings and GPTQModel's version hold: notebooks 03 and 09 and
    bench/compare.py share it. The result's manifest says `"reused": true` when nothing was quantized."""
    settings = settings or QuantizeSettings()
    versions = {d: hardware.package_version(d) for d in ("gptqmodel", "transformers", "torch")}
    key = hashlib.sha256(json.dumps([str(models.resolve_model(model)), asdict(settings), versions],
                                    sort_keys=True).encode()).hexdigest()[:10]
    name = f"{models.served_name(model)}-{settings.method}-int{settings.bits}-g{settings.group_size}-{key}"
    out = settings_module.cache_dir() / "checkpoints" / name
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        return QuantizeResult(out, manifest["seconds"], manifest["source_bytes"], manifest["out_bytes"],
                              {**manifest, "reused": True})
    shutil.rmtree(out, ignore_errors=True)  # an interrupted run never leaves a folder with a manifest
    return quantize(model, out, settings, on_progress=on_progress)


def _read_progress(log_path: Path, last: Progress, elapsed_s: float) -> Progress:
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 32_768))
            tail = f.read().decode(errors="replace")
    except OSError:
        return last
    matches = _PROGRESS.findall(tail)
    if not matches:
        return Progress(last.layer, last.layers, elapsed_s, last.stage)
    layer, last_index = map(int, matches[-1])
    return Progress(layer, last_index + 1, elapsed_s, "quantizing")


def _worker(job_path: str) -> None:
    """Child process: run GPTQModel on the job and save into the job's folder."""
    job = json.loads(Path(job_path).read_text())
    s = job["settings"]
    from gptqmodel import GPTQModel, QuantizeConfig
    from gptqmodel.quantization.config import RTNConfig

    if s["method"] == "rtn":
        config = RTNConfig(bits=s["bits"], group_size=s["group_size"], sym=s["sym"])
    else:
        config = QuantizeConfig(bits=s["bits"], group_size=s["group_size"], desc_act=s["desc_act"], sym=s["sym"],
                                damp_percent=s["damp_percent"])
    model = GPTQModel.load(job["source"], config)
    model.quantize(job["samples"] if s["method"] == "gptq" else None, batch_size=4)
    model.save(job["out"])


if __name__ == "__main__":  # the child process quantize() starts
    _worker(sys.argv[1])
