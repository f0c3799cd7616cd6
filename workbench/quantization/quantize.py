"""quantize.py turns a bf16 checkpoint into a GPTQ (or round-to-nearest) INT4/INT8 checkpoint that
vLLM serves, and measures what it cost. GPTQModel 7.6 does the work in a child process (so that a
run can be cancelled and its memory is returned); this module checks the settings before any work (against
the installed vLLM's own GPTQ config validation, and against the run's plan in quantize_plan.py), prepares
calibration text (quantize_calibration.py), streams per-layer progress, resumes a stopped run from GPTQModel's
own per-layer checkpoints where GPTQModel offers them, and moves the result into place only when it is
complete, with a manifest. It knows nothing about serving: quality.py measures what a checkpoint cost through
the served engine.
"""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from workbench import settings as settings_module
from workbench.errors import ConfigError, WorkbenchError
from workbench.quantization import quantize_plan
from workbench.quantization.quantize_calibration import (
    Calibration,
    chat_mix,
    default_text,
    hub_dataset_text,  # noqa: F401
    needed_tokens,
    read_texts,
    split_calibration,
)
from workbench.quantization.quantize_plan import KERNEL_GROUP_SIZES, quantized_input_widths, valid_group_sizes  # noqa: F401
from workbench.serving import hardware, hub, models, processes
from workbench.serving.model_catalog import ModelSpec
from workbench.store import Store

MANIFEST = "workbench-manifest.json"
# GPTQModel prints "Quantizing layer 3 of 29" (to a file) or "... in layer [3 of 29]" (to a terminal)
_PROGRESS = re.compile(r"[Qq]uantizing (?:\S+ in )?layer\s*\[?(\d+) of (\d+)")
AUTO = 0  # group_size: the largest that divides every width (quantize_plan.default_group_size)


@dataclass(frozen=True)
class QuantizeSettings:
    method: str = "gptq"  # "gptq" or "rtn"
    bits: int = 4
    group_size: int = AUTO  # 0: 128 where the model's widths allow it, else the largest that divides them
    desc_act: bool = False  # vLLM 0.32 refuses it (checked before any work); act_group_aware is what it serves
    act_group_aware: bool = True  # GPTQModel's static, group-aware activation order (desc_act stays False)
    sym: bool = True
    damp_percent: float = 0.05
    samples: int = 32
    seq_len: int = 512  # tokens per calibration sample
    holdout_fraction: float = 0.2
    calibration: str = "chat"  # the default text: "chat" (quantize_calibration.chat_mix) or "pydoc" (Python's docs)

    def __post_init__(self):
        if self.method not in ("gptq", "rtn"):
            raise ConfigError(f"method={self.method!r} is not one of 'gptq', 'rtn'.")
        if self.bits not in (4, 8):
            raise ConfigError(f"bits={self.bits} is not one of 4, 8 (vLLM's GPTQ kernels).")
        if self.group_size < -1:
            raise ConfigError(f"group_size={self.group_size} must be positive, -1 (per channel) or 0 (automatic).")
        if not 0 < self.damp_percent < 1:
            raise ConfigError(f"damp_percent={self.damp_percent} is outside (0, 1); 0.01-0.1 is usual.")
        if self.samples < 1 or self.seq_len < 16:
            raise ConfigError(f"samples={self.samples}, seq_len={self.seq_len}: need at least 1 sample of 16 tokens.")
        if not 0 < self.holdout_fraction < 1:
            raise ConfigError(f"holdout_fraction={self.holdout_fraction} is outside (0, 1).")
        if self.calibration not in ("chat", "pydoc"):
            raise ConfigError(f"calibration={self.calibration!r} is not one of 'chat', 'pydoc'.")

    @classmethod
    def given(cls, **values) -> "QuantizeSettings":
        """Settings from a form: a field left empty (None, "" or a browser's 0 for a number) keeps its default, and
        a number that arrives as a float is cast to the field's type."""
        defaults = cls()

        def empty(v):
            return v is None or v == "" or (v == 0 and not isinstance(v, bool))

        return cls(**{k: type(getattr(defaults, k))(v) for k, v in values.items() if not empty(v)})

    def for_model(self, spec: ModelSpec) -> "QuantizeSettings":
        """The settings with an automatic group size made concrete for `spec`."""
        if self.group_size != AUTO:
            return self
        return replace(self, group_size=quantize_plan.default_group_size(spec))


# ---------------------------------------------------------------------------------------------
# Checks before any work
def check_group_size(spec: ModelSpec, group_size: int) -> None:
    """Refuse a group size that does not divide every quantized layer's input width. GPTQModel
    would write the checkpoint anyway and vLLM would die loading it with a bare AssertionError."""
    if group_size in (-1, AUTO):
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


def quantization_config(settings: QuantizeSettings) -> dict:
    """The fields of the quantization_config GPTQModel 7.6 writes into config.json (QuantizeConfig.to_dict) that
    vLLM reads; tests/quantization/test_quantize.py compares them with GPTQModel's own."""
    return {
        "bits": settings.bits,
        "group_size": settings.group_size,
        "desc_act": settings.desc_act,
        "sym": settings.sym,
        "lm_head": False,
        "quant_method": "gptq",
        "checkpoint_format": "gptq",
    }


_VLLM_FIXES = [
    (
        "desc_act",
        "Fix: leave out --desc-act (untick act-order). GPTQModel's act_group_aware, on by default, orders "
        "the activations statically within each group, which vLLM serves.",
    ),
    (
        "sym=False",
        "Fix: leave out --asym; vLLM's GPTQ kernels take symmetric weights only (for asymmetric INT4, "
        "quantize to AWQ with another tool).",
    ),
]


def check_with_vllm(settings: QuantizeSettings) -> None:
    """Run the quantization_config the run would write through the installed vLLM's own GPTQ config validation
    (AutoGPTQConfig.from_config in vLLM 0.32), before any work. vLLM's reason and the fix end up in a ConfigError."""
    from vllm.model_executor.layers.quantization import get_quantization_config

    config = quantization_config(settings)
    try:
        get_quantization_config(config["quant_method"]).from_config(config)
    except (ValueError, KeyError) as exc:
        reason = str(exc)
        fix = next(
            (f for key, f in _VLLM_FIXES if key in reason), "Fix: use --bits 4 or 8, symmetric, without --desc-act."
        )
        import vllm

        raise ConfigError(f"vLLM {vllm.__version__} would refuse this checkpoint: {reason} {fix}") from None


def plan_run(
    model: str,
    settings: QuantizeSettings | None = None,
    gpu: str | None = None,
    ram_gib: float | None = None,
    disk_free_gib: float | None = None,
) -> quantize_plan.QuantizePlan:
    """The plan of quantizing `model` (a catalog name, a folder, or what models.find_model resolves) on this
    machine, or on the GPU and RAM named. Reads the model's config only, never its weights."""
    settings = settings or QuantizeSettings()
    spec = models.find_model(model)
    settings = settings.for_model(spec)
    check_group_size(spec, settings.group_size)
    check_with_vllm(settings)
    this_machine = gpu is None and ram_gib is None
    gpu_spec = hardware.find_gpu(gpu) if gpu else hardware.local_gpu_spec()
    if ram_gib is None:
        ram_gib = hardware.machine_facts().memory_gib or 0.0
    if disk_free_gib is None and this_machine:
        disk_free_gib = round(_free_bytes(settings_module.cache_dir()) / 2**30, 1)
    return quantize_plan.plan(
        spec,
        settings.bits,
        settings.group_size,
        settings.samples,
        settings.seq_len,
        gpu_spec,
        ram_gib,
        disk_free_gib,
        spec.weight_bytes,
    )


def _free_bytes(folder: Path) -> int:
    """Free space on the file system `folder` is (or will be) on."""
    folder = Path(folder)
    return shutil.disk_usage(next((p for p in [folder, *folder.parents] if p.exists()), Path("/"))).free


def check_machine(
    spec: ModelSpec, settings: QuantizeSettings, available_ram_gib: float | None = None, gpu=None
) -> quantize_plan.QuantizePlan:
    """The plan on this machine (or with `available_ram_gib` and `gpu`, a GpuSpec): `.fits`, `.reason`, `.fixes`."""
    settings = settings.for_model(spec)
    if available_ram_gib is None:
        available_ram_gib = hardware.machine_facts().memory_gib or 0.0
        gpu = gpu or hardware.local_gpu_spec()
    return quantize_plan.plan(
        spec,
        settings.bits,
        settings.group_size,
        settings.samples,
        settings.seq_len,
        gpu,
        available_ram_gib,
        None,
        spec.weight_bytes,
    )


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
        return {
            "out": str(self.out),
            "seconds": round(self.seconds, 1),
            "source_bytes": self.source_bytes,
            "out_bytes": self.out_bytes,
            "settings": self.manifest["settings"],
        }

    def to_text(self) -> str:
        return (
            f"wrote {self.out} in {self.seconds:.0f} s: {self.source_bytes / 1e6:.0f} MB -> "
            f"{self.out_bytes / 1e6:.0f} MB. Serve it: workbench serve --model {self.out}"
        )

    def _repr_markdown_(self) -> str:
        settings = ", ".join(f"{k} {v}" for k, v in self.manifest.get("settings", {}).items())
        return (
            f"**{Path(self.out).name}** in {self.seconds:.0f} s: {self.source_bytes / 1e6:.0f} MB → "
            f"{self.out_bytes / 1e6:.0f} MB ({self.out_bytes / self.source_bytes:.0%})"
            + (f"<br>{settings}" if settings else "")
        )


class Cancelled(WorkbenchError):
    """The run was cancelled; nothing was written where the checkpoint was expected."""


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))


def _calibration_text(source: Path, tokenizer, settings: QuantizeSettings, calibration_text, dataset, column) -> str:
    if dataset:
        return hub_dataset_text(dataset, column)
    if isinstance(calibration_text, (list, tuple)):
        return read_texts(calibration_text)
    if calibration_text is not None:
        return calibration_text
    if settings.calibration == "pydoc":
        return default_text()
    return chat_mix(tokenizer, needed_tokens(settings), max_tokens_each=settings.seq_len)


def _bytes_in(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) if Path(folder).exists() else 0


def work_dir(out: Path) -> Path:
    """Where a run keeps its job, GPTQModel's offload and its checkpoints until the output is complete; a run with
    the same output folder and the same job resumes from it."""
    return out.parent / f".{out.name}.partial"


class _Stop(BaseException):
    """SIGTERM or SIGHUP arrived while the child ran."""


def quantize(
    model: str,
    out: str | Path,
    settings: QuantizeSettings | None = None,
    calibration_text: str | list | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    log_path: str | Path | None = None,
    calibration_dataset: str | None = None,
    calibration_column: str = "text",
) -> QuantizeResult:
    """Quantize `model` into `out`. Checks first; the output appears only when complete. `calibration_text` is
    the text itself, a list of .txt/.jsonl files to read it from, or None for the default chat mix
    (quantize_calibration.chat_mix); `calibration_dataset` a Hub dataset id[:file] instead.
    A stop by SIGTERM, SIGHUP or Ctrl-C ends the child; where GPTQModel checkpoints this model, the work so far
    is kept and the same call resumes it; `cancel` discards it."""
    from transformers import AutoTokenizer

    settings = settings or QuantizeSettings()
    with hub.watching(lambda d: on_progress(Progress(stage=str(d))) if on_progress else None):
        source = models.resolve_model(model)  # a Hub id's weights first, their progress as the run's
    spec = models.spec_from_folder(source)
    if spec.declared_quant:
        raise ConfigError(f"{source} is already quantized ({spec.declared_quant}); quantize the bf16 checkpoint.")
    settings = settings.for_model(spec)
    check_group_size(spec, settings.group_size)
    check_with_vllm(settings)
    plan = check_machine(spec, settings)
    if not plan.fits:
        raise ConfigError(plan.refusal())
    out = Path(out).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output folder {str(out)!r} exists and is not empty. Fix: choose a new --out, or delete it.")
    disk_bytes = sum(v for k, v in plan.disk_bytes.items() if k != "bf16 download")  # the source is here already
    if disk_bytes > _free_bytes(out.parent) + _bytes_in(work_dir(out)):
        raise ConfigError(
            f"quantizing {spec.name} writes about {disk_bytes / 2**30:.1f} GiB next to {out} and "
            f"{_free_bytes(out.parent) / 2**30:.1f} GiB is free there. Fix: free space, or choose "
            "another --out."
        )
    resumable = plan.resumable and settings.method == "gptq"
    tokenizer = AutoTokenizer.from_pretrained(source)
    work = work_dir(out)
    job_path = work / "job.json"
    previous = json.loads(job_path.read_text()) if job_path.is_file() else None
    asked = Store.key([str(source), asdict(settings), calibration_dataset, calibration_column, calibration_text])
    if resumable and previous and previous.get("asked") == asked:
        job = previous  # the same run: resume from GPTQModel's checkpoints with the same calibration samples
        calibration = Calibration(job["samples"], job["heldout"], settings.seq_len)
    else:
        shutil.rmtree(work, ignore_errors=True)
        text = _calibration_text(source, tokenizer, settings, calibration_text, calibration_dataset, calibration_column)
        calibration = split_calibration(text, tokenizer, settings)
        job = {
            "source": str(source),
            "asked": asked,
            "out": str(work / "out"),
            "settings": asdict(settings),
            "samples": calibration.samples,
            "heldout": calibration.heldout,
            "checkpoint": str(work / "checkpoint") if resumable else None,
            "offload": str(work / "offload"),
        }
        work.mkdir(parents=True)
        job_path.write_text(json.dumps(job))
    shutil.rmtree(work / "out", ignore_errors=True)
    if log_path is None:
        log_path = settings_module.cache_dir() / "logs" / f"quantize-{out.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GPTQMODEL_CPU_WORKERS=os.environ.get("GPTQMODEL_CPU_WORKERS", "2"), PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    progress = Progress(layers=spec.num_layers, stage="loading")
    handlers = _stop_on(signal.SIGTERM, signal.SIGHUP)
    try:
        with open(log_path, "wb") as log:
            # GPTQModel writes logs/gptq_log_*.log under its working directory: keep them with ours
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.quantization.quantize", str(job_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=log_path.parent,
                start_new_session=True,
            )
            try:
                while proc.poll() is None:
                    if cancel is not None and cancel.wait(0.5):
                        raise Cancelled(f"quantization of {source.name} was cancelled; {out} was not written.")
                    if cancel is None:
                        time.sleep(0.5)
                    progress = _read_progress(log_path, progress, time.perf_counter() - started)
                    if on_progress:
                        on_progress(progress)
            except Cancelled:
                processes.stop_group(proc, timeout_s=10)
                shutil.rmtree(work, ignore_errors=True)
                raise
            except BaseException as exc:  # SIGTERM, SIGHUP, Ctrl-C: end the child, keep what can resume
                processes.stop_group(proc, timeout_s=30)  # GPTQModel commits its checkpoint on SIGTERM
                if not resumable:
                    shutil.rmtree(work, ignore_errors=True)
                if isinstance(exc, _Stop):
                    raise KeyboardInterrupt from None
                raise
    finally:
        _restore(handlers)
    if proc.returncode != 0:
        tail = "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-25:])
        if not resumable:
            shutil.rmtree(work, ignore_errors=True)
        raise WorkbenchError(
            f"GPTQModel exited with code {proc.returncode}; nothing was written to {out}"
            + (f" (rerun to resume: {work} keeps the finished layers)" if resumable else "")
            + f".\n{tail}"
        )
    seconds = time.perf_counter() - started
    done = work / "out"
    peak = json.loads((work / "peak.json").read_text()) if (work / "peak.json").is_file() else {}
    manifest = {
        "source": str(source),
        "source_name": models.served_name(model),
        "settings": asdict(settings),
        "calibration": {
            "samples": len(calibration.samples),
            "tokens_per_sample": calibration.tokens_per_sample,
            "source": calibration_dataset
            or (
                "files"
                if isinstance(calibration_text, (list, tuple))
                else "text"
                if calibration_text
                else settings.calibration
            ),
        },
        "versions": {d: hardware.package_version(d) for d in ("gptqmodel", "transformers", "torch")},
        "seconds": round(seconds, 1),
        "source_bytes": folder_bytes(source),
        "out_bytes": folder_bytes(done),
        "peak_rss_gib": peak.get("peak_rss_gib"),
        "planned_peak_ram_gib": round(plan.peak_ram_gib, 2),
        "resumed": job is previous,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (done / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (done / "heldout.txt").write_text(calibration.heldout)
    if out.exists():
        out.rmdir()  # empty, checked above
    os.replace(done, out)
    shutil.rmtree(work, ignore_errors=True)
    if on_progress:
        on_progress(Progress(spec.num_layers, spec.num_layers, seconds, "done"))
    return QuantizeResult(out, seconds, manifest["source_bytes"], manifest["out_bytes"], manifest)


def _stop_on(*signals) -> dict:
    """While the child runs, SIGTERM and SIGHUP (a closed terminal or SSH session) unwind this process like Ctrl-C,
    so that the child is stopped. Only the main thread can set handlers; elsewhere (the UI's jobs) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum, frame):
        raise _Stop(signal.Signals(signum).name)

    return {sig: signal.signal(sig, stop) for sig in signals}


def _restore(handlers: dict) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def checkpoint_dir(model: str, settings: QuantizeSettings, suffix: str) -> Path:
    """The one home of the checkpoints the workbench names itself (the cache's checkpoints/): one folder per model,
    settings and `suffix` (a content key or a time stamp), flat even for a Hub id (`Qwen/Qwen3-14B` becomes
    `Qwen--Qwen3-14B-gptq-int4-g128-…`, as the Hugging Face cache spells it)."""
    name = models.served_name(model).replace("/", "--")
    group = settings.group_size or "auto"
    return (
        settings_module.cache_dir() / "checkpoints" / f"{name}-{settings.method}-int{settings.bits}-g{group}-{suffix}"
    )


def target(model: str, settings: QuantizeSettings, out: str | None = None) -> Path:
    """Where a run of `quantize` should write, once its plan is checked on this machine (the group size, vLLM's own
    config check, the memory plan): `out`, or a new folder under the cache's checkpoints/ named by the time."""
    plan = plan_run(model, settings)
    if not plan.fits:
        raise ConfigError(plan.refusal())
    if out and out.strip():
        return Path(out.strip()).expanduser()
    return checkpoint_dir(model, replace(settings, group_size=plan.group_size), time.strftime("%Y%m%d-%H%M%S"))


def cached(model: str, settings: QuantizeSettings | None = None, on_progress=None) -> QuantizeResult:
    """The checkpoint `quantize(model, ..., settings)` makes with the default calibration text, made once into
    the cache (checkpoints/) and reused while the settings and GPTQModel's version hold: notebooks 03 and 09 and
    bench/compare.py share it. The result's manifest says `"reused": true` when nothing was quantized."""
    settings = (settings or QuantizeSettings()).for_model(models.spec_from_folder(models.resolve_model(model)))
    versions = {d: hardware.package_version(d) for d in ("gptqmodel", "transformers", "torch")}
    key = Store.key([str(models.resolve_model(model)), asdict(settings), versions])
    out = checkpoint_dir(model, settings, key[:10])
    made = Store(settings_module.cache_dir() / "quantize")  # the result store: one record per checkpoint made
    if (out / MANIFEST).is_file():
        record = made.get(key)
        if record is None:  # made before the store kept records: adopted as it is
            record = json.loads((out / MANIFEST).read_text())
            made.put(key, record)
        return QuantizeResult(
            out, record["seconds"], record["source_bytes"], record["out_bytes"], {**record, "reused": True}
        )
    shutil.rmtree(out, ignore_errors=True)  # an interrupted run never leaves a folder with a manifest
    result = quantize(model, out, settings, on_progress=on_progress)
    made.put(key, result.manifest)
    return result


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
    """Child process: run GPTQModel on the job and save into the job's folder. Ends itself if its parent dies."""
    job = json.loads(Path(job_path).read_text())
    s = job["settings"]
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True).start()
    from gptqmodel import GPTQModel, QuantizeConfig
    from gptqmodel.quantization.config import RTNConfig

    common = dict(
        bits=s["bits"],
        group_size=s["group_size"],
        sym=s["sym"],
        offload_to_disk=True,
        offload_to_disk_path=job["offload"],
    )
    if s["method"] == "rtn":
        config = RTNConfig(**common)
    else:
        config = QuantizeConfig(
            **common,
            desc_act=s["desc_act"],
            damp_percent=s["damp_percent"],
            act_group_aware=s["act_group_aware"] and not s["desc_act"],
        )
    model = GPTQModel.load(job["source"], config)
    kwargs = {}
    if job.get("checkpoint") and s["method"] == "gptq":
        from gptqmodel.looper.checkpoint_store import CheckpointConfig

        kwargs["checkpoint"] = CheckpointConfig(path=job["checkpoint"], resume="auto", interval="layer:1")
    model.quantize(job["samples"] if s["method"] == "gptq" else None, batch_size=quantize_plan.BATCH_SIZE, **kwargs)
    model.save(job["out"])
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    (Path(job_path).parent / "peak.json").write_text(json.dumps({"peak_rss_gib": round(peak_gib, 2)}))


if __name__ == "__main__":  # the child process quantize() starts
    _worker(sys.argv[1])
