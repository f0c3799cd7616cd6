"""quantize_plan.py plans a GPTQ run layer by layer, as GPTQModel 7.6 runs it, before any weight is loaded: peak
RAM, peak GPU memory, disk and time, and whether that fits a machine. Pure arithmetic on a ModelSpec: no I/O, no
GPTQModel; quantize.py gathers the machine's facts and refuses a run that cannot fit.

What GPTQModel 7.6 does (read in its source, .venv/.../gptqmodel):
- `offload_to_disk=True` is QuantizeConfig's default: the model is built as an empty (meta) shell and each
  decoder layer is read from the checkpoint's safetensors when its turn comes (models/loader.py, LazyTurtle);
  the embeddings, norm and lm_head are offloaded to disk after the inputs are captured (looper/module_looper.py),
  and finished layers are offloaded too (the `offload_to_disk` help text). So RAM never holds the whole model.
- Layer 0 runs on the CPU to capture the calibration inputs, which are kept on the CPU
  (looper/stage_inputs_capture.py); the following layers run on the GPU, holding one layer's bf16 weights, its
  layer inputs and outputs, and the fp32 Hessians (in_features² each) of the sub-step being quantized
  (true_sequential: q/k/v, then o, then gate/up, then down). Modules that read the same input share one Hessian
  (HessianConfig.dedup_shared_inputs, default True; looper/gptq_processor.py).
- Packing to int32 runs on the CPU (`pack_impl="cpu"`), and saving streams shard by shard
  (models/writer.py, streaming_state_dict_to_shards).
"""

from dataclasses import dataclass, field, replace

from workbench.serving.hardware import CUDA_CONTEXT_GIB
from workbench.serving.model_catalog import CATALOG, ModelSpec

GIB = 2**30
KERNEL_GROUP_SIZES = (128, 64, 32)  # what vLLM's GPTQ kernels take, besides -1 (per channel)
BATCH_SIZE = 4  # samples per forward pass (quantize._worker passes batch_size=4)
PROCESS_BYTES = int(1.2 * GIB)  # Python, torch, transformers, GPTQModel: 1.11 GiB peak measured for the 135M model
CUDA_HOST_BYTES = int(1.5 * GIB)  # the CUDA libraries and pinned buffers in the host process (estimate)
CUDA_CONTEXT_BYTES = int(CUDA_CONTEXT_GIB * GIB)
ALLOCATOR_SLACK = 1.2  # torch's caching allocator holds freed blocks for reuse
DISK_GB_S = 0.5  # reading the source and writing the result (a SATA SSD; NVMe is faster)
RESUMABLE_FAMILIES = ("llama", "qwen3_moe")  # GPTQModel 7.6 looper/gptq_checkpoint.py: validate_checkpoint_support


# ---------------------------------------------------------------------------------------------
# The layers GPTQ quantizes
def linears(spec: ModelSpec, gated: bool = True) -> list[tuple[str, int, int, str]]:
    """(name, in_features, out_features, step) of one decoder layer; modules of one step read the same input.
    A mixture of experts counts every expert (each quantized, each with its own Hessian)."""
    h, attn = spec.hidden_size, spec.num_heads * spec.head_dim
    kv = spec.num_kv_heads * spec.head_dim
    out = [("q_proj", h, attn, "qkv"), ("k_proj", h, kv, "qkv"), ("v_proj", h, kv, "qkv"), ("o_proj", attn, h, "o")]
    experts, inter = (spec.num_experts, spec.moe_intermediate_size) if spec.num_experts else (1, spec.intermediate_size)
    for e in range(experts):
        step = f"mlp{e}"
        out += [(f"up_proj{e}", h, inter, step)] + ([(f"gate_proj{e}", h, inter, step)] if gated else [])
        out.append((f"down_proj{e}", inter, h, f"down{e}"))
    return out


def quantized_input_widths(spec: ModelSpec) -> dict[str, int]:
    """Input width of every kind of layer GPTQ quantizes (the dimension groups run along)."""
    widths = {"q/k/v/gate/up_proj": spec.hidden_size, "o_proj": spec.num_heads * spec.head_dim}
    widths["down_proj"] = spec.moe_intermediate_size if spec.num_experts else spec.intermediate_size
    return widths


def valid_group_sizes(spec: ModelSpec) -> list[int]:
    widths = quantized_input_widths(spec).values()
    return [g for g in KERNEL_GROUP_SIZES if all(w % g == 0 for w in widths)] + [-1]


def default_group_size(spec: ModelSpec) -> int:
    """128, the planner's and GPTQModel's default, where every width divides by it; else the largest that does
    (the bundled SmolLM2 is 576 wide: 64)."""
    return valid_group_sizes(spec)[0]


# ---------------------------------------------------------------------------------------------
# Time: floating-point operations per layer, at a rate derived from a measured run
def layer_flops(spec: ModelSpec, tokens: int, seq_len: int, gated: bool = True) -> float:
    """One decoder layer: two forward passes over the calibration tokens (collect the Hessians, then the quantized
    layer's outputs for the next), Hessian accumulation (2·T·in² per distinct input), and GPTQ's solve per module
    (Cholesky inverse ~in³, error propagation ~out·in²; Frantar et al. 2022, arXiv:2210.17323, section 3)."""
    mods = linears(spec, gated)
    params = sum(i * o for _, i, o, _ in mods)
    attention = 4 * tokens * seq_len * spec.num_heads * spec.head_dim  # scores and weighted sum
    forward = 2 * (2 * params * tokens + attention)
    inputs = {step: i for _, i, _, step in mods}
    hessians = sum(2 * tokens * i * i for i in inputs.values())
    solve = sum(i**3 + o * i * i for _, i, o, _ in mods)
    return forward + hessians + solve


@dataclass(frozen=True)
class TimeBasis:
    """A run whose time is known: the rate it implies (FLOP/s of layer_flops) scales to other runs."""

    spec: ModelSpec
    samples: int
    seq_len: int
    seconds: float
    gated: bool
    source: str
    reference_tflops: float = 0.0  # the GPU's dense fp16 TFLOP/s (0: a CPU)

    @property
    def flops_per_s(self) -> float:
        tokens = self.samples * self.seq_len
        return self.spec.num_layers * layer_flops(self.spec, tokens, self.seq_len, self.gated) / self.seconds


# OPT-175B's shape (Zhang et al. 2022, arXiv:2205.01068, table 1): 96 layers, 12288 wide, 96 heads, MLP 4x.
_OPT_175B = ModelSpec("OPT-175B", 96, 12288, 49152, 96, 96, 128, 50272, True, 2048)
GPU_BASIS = TimeBasis(
    _OPT_175B,
    128,
    2048,
    4.2 * 3600,
    gated=False,
    reference_tflops=312.0,
    source=(
        "GPTQ (Frantar et al., arXiv:2210.17323): OPT-175B in 4.2 GPU hours on one A100 (312 fp16 TFLOP/s) with "
        "128 x 2048 calibration tokens, scaled by floating-point operations and this GPU's fp16 TFLOP/s; +-2x"
    ),
)
CPU_BASIS = TimeBasis(
    CATALOG["smollm2-135m-instruct"],
    32,
    512,
    149.4 - 20.0,
    gated=True,
    source=(
        "bench/results/quantize.json (2026-12-01): SmolLM2-135M, 32 x 512 tokens, 149.4 s on this 2-core CPU "
        "(20 s of it start-up), scaled by floating-point operations; another CPU differs"
    ),
)
START_S = 20.0  # imports and model set-up, seen in the CPU basis run


# ---------------------------------------------------------------------------------------------
# The plan
@dataclass(frozen=True)
class QuantizePlan:
    """Per-term bytes of the run's peak RAM, peak GPU memory and disk, its time, and whether it fits."""

    model: str
    device: str  # the GPU's name, or "CPU"
    bits: int
    group_size: int
    samples: int
    seq_len: int
    ram_bytes: dict[str, int]
    gpu_bytes: dict[str, int]  # empty on the CPU
    disk_bytes: dict[str, int]
    ram_gib: float  # what the machine has
    gpu_gib: float | None
    disk_free_gib: float | None
    seconds: float
    time_basis: str
    resumable: bool
    resume: str
    fits: bool = True
    reason: str = ""
    fixes: tuple[str, ...] = field(default=())

    @property
    def peak_ram_gib(self) -> float:
        return sum(self.ram_bytes.values()) / GIB

    @property
    def peak_gpu_gib(self) -> float:
        return sum(self.gpu_bytes.values()) / GIB

    @property
    def disk_gib(self) -> float:
        return sum(self.disk_bytes.values()) / GIB

    def as_dict(self) -> dict:
        gib = lambda terms: {k: round(v / GIB, 3) for k, v in terms.items()}  # noqa: E731
        return {
            "model": self.model,
            "device": self.device,
            "bits": self.bits,
            "group_size": self.group_size,
            "samples": self.samples,
            "seq_len": self.seq_len,
            "fits": self.fits,
            "reason": self.reason,
            "fixes": list(self.fixes),
            "peak_ram_gib": round(self.peak_ram_gib, 2),
            "ram_gib": round(self.ram_gib, 2),
            "ram_terms_gib": gib(self.ram_bytes),
            "peak_gpu_gib": round(self.peak_gpu_gib, 2) if self.gpu_bytes else None,
            "gpu_gib": self.gpu_gib,
            "gpu_terms_gib": gib(self.gpu_bytes),
            "disk_gib": round(self.disk_gib, 2),
            "disk_free_gib": self.disk_free_gib,
            "disk_terms_gib": gib(self.disk_bytes),
            "minutes": round(self.seconds / 60, 1),
            "time_basis": self.time_basis,
            "resumable": self.resumable,
            "resume": self.resume,
        }

    def to_text(self) -> str:
        gpu = f"; GPU {self.peak_gpu_gib:.1f} of {self.gpu_gib:.1f} GiB" if self.gpu_bytes else ""
        disk = f"{self.disk_gib:.1f} GiB" + (f" of {self.disk_free_gib:.0f} GiB free" if self.disk_free_gib else "")
        lines = [
            f"{'fits' if self.fits else 'does NOT fit'}: GPTQ int{self.bits} g{self.group_size} of {self.model} "
            f"on {self.device}, {self.samples} x {self.seq_len} calibration tokens",
            f"  peak RAM {self.peak_ram_gib:.1f} of {self.ram_gib:.1f} GiB{gpu}; disk {disk}; "
            f"about {self.seconds / 60:.0f} min",
            "  RAM: " + ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.ram_bytes.items()),
        ]
        if self.gpu_bytes:
            lines.append("  GPU: " + ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.gpu_bytes.items()))
        lines += [
            "  disk: " + ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.disk_bytes.items()),
            f"  time: {self.time_basis}",
            f"  resume: {self.resume}",
        ]
        if not self.fits:
            lines.append(f"  {self._why()}")
        return "\n".join(lines)

    def _why(self) -> str:
        return f"{self.reason} Fix: " + "; or ".join(self.fixes) + "."

    def refusal(self) -> str:
        """Why a run is refused, and the fix: what `quantize` raises for a plan that does not fit."""
        return f"quantizing {self.model} {self._why()}"

    def _repr_markdown_(self) -> str:
        return "```\n" + self.to_text() + "\n```"


def _bytes_per_param(bits: int, group_size: int) -> float:
    """Packed weights plus one fp16 scale and one packed zero point per group of a column."""
    group = group_size if group_size > 0 else 4096
    return bits / 8 + (2 + bits / 8) / group


def plan(
    spec: ModelSpec,
    bits: int,
    group_size: int,
    samples: int,
    seq_len: int,
    gpu=None,
    ram_gib: float = 0.0,
    disk_free_gib: float | None = None,
    source_bytes: int | None = None,
) -> QuantizePlan:
    """The run of GPTQModel 7.6 on one GPU (`gpu`, a hardware.GpuSpec) or on the CPU (gpu=None)."""
    mods = linears(spec)
    layer_params = sum(i * o for _, i, o, _ in mods)
    tokens = samples * seq_len
    inputs: dict[str, int] = {}
    for _, i, _, step in mods:
        inputs[step] = i
    # Hessians of one sub-step at a time (true_sequential); the largest module's fp32 working copies beside them
    step_hessians = max(4 * i * i for i in inputs.values())
    big_in, big_out = max(((i, o) for _, i, o, _ in mods), key=lambda io: io[0] * io[0] + io[0] * io[1])
    working = 4 * big_in * big_in + 4 * big_in * big_out  # H⁻¹ and W in fp32
    widest = max(spec.hidden_size, spec.moe_intermediate_size if spec.num_experts else spec.intermediate_size)
    activations = 2 * 2 * tokens * spec.hidden_size  # the layer's inputs and outputs, bf16
    forward = 3 * 2 * BATCH_SIZE * seq_len * widest  # one batch's MLP intermediates, bf16
    embeddings = 2 * spec.vocab_size * spec.hidden_size * (1 if spec.tied_embeddings else 2)
    layer_bytes = 2 * layer_params
    quantized_bytes = int(spec.linear_params() * _bytes_per_param(bits, group_size) + 2 * spec.other_params())
    source_bytes = source_bytes or 2 * spec.total_params()

    compute = {
        "one layer, bf16": layer_bytes,
        "Hessians of one step, fp32": step_hessians,
        "GPTQ working copies, fp32": working,
        "layer inputs and outputs": activations,
        "forward pass": forward,
    }
    ram = {
        "Python, torch, GPTQModel": PROCESS_BYTES + (CUDA_HOST_BYTES if gpu is not None else 0),
        "embeddings and lm_head (input capture)": embeddings,
        "captured calibration inputs": tokens * spec.hidden_size * 2,
        "layer being packed (bf16 + fp32 + packed)": int(layer_params * (2 + 4 + bits / 8)),
    }
    if gpu is None:
        ram.update({k: v for k, v in compute.items() if k != "layer inputs and outputs"})
        gpu_bytes: dict[str, int] = {}
    else:
        gpu_bytes = {"CUDA context": CUDA_CONTEXT_BYTES, **{k: int(v * ALLOCATOR_SLACK) for k, v in compute.items()}}
    disk = {
        "bf16 download": source_bytes,
        "offload (finished layers, embeddings)": quantized_bytes,
        "output checkpoint": quantized_bytes,
    }
    resumable = (spec.family or "") in RESUMABLE_FAMILIES
    if resumable:
        disk["resume checkpoints (2 kept)"] = 2 * quantized_bytes
        resume = (
            "GPTQModel's own checkpoint after every layer: rerun the same command with the same --out to "
            "resume where it stopped"
        )
    else:
        resume = (
            f"not available: GPTQModel 7.6 checkpoints only {' and '.join(RESUMABLE_FAMILIES)} models "
            f"(this is {spec.family or 'unknown'}); a stopped run starts again from layer 0"
        )

    basis = CPU_BASIS if gpu is None or not getattr(gpu, "fp16_tflops", 0) else GPU_BASIS
    rate = basis.flops_per_s * (gpu.fp16_tflops / basis.reference_tflops if basis is GPU_BASIS else 1.0)
    seconds = (
        START_S
        + spec.num_layers * layer_flops(spec, tokens, seq_len) / rate
        + (source_bytes + 2 * quantized_bytes) / (DISK_GB_S * 1e9)
    )
    basis_text = basis.source + f"; plus reading and writing {DISK_GB_S} GB/s"
    if gpu is not None and basis is CPU_BASIS:
        basis_text = f"{gpu.name}'s FLOP/s are not in the catalog: timed as this CPU; " + basis.source
    result = QuantizePlan(
        spec.name,
        gpu.name if gpu is not None else "CPU",
        bits,
        group_size,
        samples,
        seq_len,
        ram,
        gpu_bytes,
        disk,
        ram_gib,
        round(gpu.total_gib, 2) if gpu is not None else None,
        disk_free_gib,
        seconds,
        basis_text,
        resumable,
        resume,
    )
    return _verdict(result)


def _verdict(p: QuantizePlan) -> QuantizePlan:
    short = []
    if p.peak_ram_gib > p.ram_gib:
        short.append(f"RAM: needs {p.peak_ram_gib:.1f} GiB, the machine has {p.ram_gib:.1f} GiB")
    if p.gpu_bytes and p.peak_gpu_gib > p.gpu_gib:
        short.append(f"GPU memory: needs {p.peak_gpu_gib:.1f} GiB, {p.device} has {p.gpu_gib:.1f} GiB")
    if p.disk_free_gib is not None and p.disk_gib > p.disk_free_gib:
        short.append(f"disk: needs {p.disk_gib:.1f} GiB, {p.disk_free_gib:.1f} GiB is free")
    if not short:
        return p
    return replace(p, fits=False, reason="does not fit: " + "; ".join(short) + ".", fixes=tuple(_fixes(p)))


def _fixes(p: QuantizePlan) -> list[str]:
    """What would make it fit: fewer samples or shorter ones (what the activation terms scale with), a GPU, more
    memory or disk. Only fixes that do fit are named."""
    memory_short = p.peak_ram_gib > p.ram_gib or (p.gpu_bytes and p.peak_gpu_gib > p.gpu_gib)
    out = []
    if memory_short:
        tokens = p.samples * p.seq_len
        per_token_ram = (sum(v for k, v in p.ram_bytes.items() if "calibration" in k or "inputs" in k)) / tokens
        per_token_gpu = p.gpu_bytes.get("layer inputs and outputs", 0) / tokens
        ram_fixed = sum(p.ram_bytes.values()) - per_token_ram * tokens
        gpu_fixed = sum(p.gpu_bytes.values()) - per_token_gpu * tokens
        room = []
        if per_token_ram:
            room.append((p.ram_gib * GIB - ram_fixed) / per_token_ram)
        if p.gpu_bytes and per_token_gpu:
            room.append((p.gpu_gib * GIB - gpu_fixed) / per_token_gpu)
        most_tokens = int(min(room)) if room else 0
        if most_tokens >= p.seq_len:
            out.append(f"--samples {most_tokens // p.seq_len} (at --seq-len {p.seq_len})")
        if most_tokens // p.samples >= 16:
            out.append(f"--seq-len {most_tokens // p.samples} (at --samples {p.samples})")
        if not p.gpu_bytes:
            out.append("a GPU: the layers then run there and RAM holds little more than the embeddings")
        elif p.peak_gpu_gib > p.gpu_gib:
            out.append(f"a GPU with at least {p.peak_gpu_gib + 0.5:.0f} GiB")
        if p.peak_ram_gib > p.ram_gib:
            out.append(f"a machine with at least {p.peak_ram_gib + 1:.0f} GiB of RAM")
    if p.disk_free_gib is not None and p.disk_gib > p.disk_free_gib:
        out.append(f"free {p.disk_gib - p.disk_free_gib + 1:.0f} GiB more disk (or point WORKBENCH_CACHE elsewhere)")
    return out
