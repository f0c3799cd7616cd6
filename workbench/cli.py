"""The `workbench` command: each command's flags sit next to its function, which parses nothing itself, makes
one core call and prints what it returns. Every WorkbenchError becomes one `error:` line with the fix, and
exit code 2, in `main` and nowhere else."""

import argparse
import dataclasses
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from workbench import context, planner, plots, settings  # `workbench context`
from workbench.errors import ConfigError, WorkbenchError
from workbench.measurement import (
    abconfig,
    abtest,
    bench,
    bench_report,
    bfcl,
    compare,
    compare_request,
    placement,
    toolseval,
    tune,
    tune_plan,
)
from workbench.quantization import quality, quantize
from workbench.report import daily, demo_db
from workbench.report import spec as report_spec
from workbench.serving import (
    doctor,
    models,
    processes,
    vllm_flags,  # the serve flags' one declaration
)
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT, Client
from workbench.serving.engine import Engine, EngineConfig, check_parsers
from workbench.store import Store
from workbench.tasks import agent, demo_tools, docqa, docqa_dataset, documents

DESCRIPTION = (
    "The research workbench: plan, quantize, serve, measure and use a 14B-class model on one GPU "
    "(or, for real, on this CPU) with vLLM."
)
COMMANDS: list[tuple[str, str, object, object]] = []  # (name, help, flags(parser), run(args)) in order
GROUPS = {"ab": f"prompt A/B tests with statistics (see {abconfig.EXAMPLE_NAME})"}


def command(name: str, help: str, flags):
    """Register `run(args)` as `workbench NAME`; `flags(parser)` adds its flags (written just above it)."""

    def register(run):
        COMMANDS.append((name, help, flags, run))
        return run

    return register


# -- flag types ---------------------------------------------------------------------------------------
def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a whole number of at least 1")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port; use 1-65535")
    return value


def _core(parse):
    """A flag type from a core parser: its WorkbenchError becomes argparse's usage error."""

    def convert(text: str):
        try:
            return parse(text)
        except WorkbenchError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _duration(what: str):
    return _core(lambda text: bench.parse_duration_ms(text, what))


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds (e.g. 2000)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 ms")
    return value


def _url(args) -> str:
    url = args.url or settings.engine_url()
    if not url:
        raise WorkbenchError(
            "no engine URL: pass --url http://127.0.0.1:PORT (printed by `workbench serve`) or set WORKBENCH_URL."
        )
    return url


def _url_flag(p, help: str = "engine URL (default: $WORKBENCH_URL)") -> None:
    p.add_argument("--url", default=None, help=help)


def _on_off(p, dest: str, on: tuple[str, ...], off: str, help: str) -> None:
    """A switch with three states from one declaration: `on` sets True, `off` sets False, neither leaves None (the
    default the core chooses: the model's family for the parsers, the task for thinking)."""
    p.add_argument(*on, dest=dest, action="store_const", const=True, default=None, help=help)
    p.add_argument(off, dest=dest, action="store_const", const=False, help=f"the opposite of {on[0]}")


def _thinking_flag(p) -> None:
    _on_off(
        p,
        "thinking",
        ("--thinking",),
        "--no-thinking",
        "ask a reasoning model (Qwen3) to think first; default: each step's own (thinking.THINKING_DEFAULTS: on "
        "for answers, off for structured steps); needs a server with a reasoning parser",
    )


def _json_flag(p) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text")


def _print(result, as_json: bool) -> None:
    """A result as JSON (its as_dict) or as its text."""
    print(result.to_json().rstrip() if as_json else result.to_text())


def _workload_flags(p, prompts: int, input_len: int, output_len: int, input_note: str = "") -> None:
    """A benchmark's workload (bench.Workload): how many requests, and how long their prompts and answers are."""
    p.add_argument(
        "--num-prompts", type=_positive, default=prompts, help="requests in the benchmark (default: %(default)s)"
    )
    p.add_argument(
        "--input-len",
        type=_positive,
        default=input_len,
        help=f"prompt tokens per request{input_note} (default: %(default)s)",
    )
    p.add_argument(
        "--output-len", type=_positive, default=output_len, help="answer tokens per request (default: %(default)s)"
    )


def _slo_flags(p) -> None:
    p.add_argument(
        "--slo-ttft",
        dest="slo_ttft",
        type=_duration("--slo-ttft"),
        default=None,
        help="TTFT objective with its unit, e.g. 2s",
    )
    p.add_argument("--slo-ttft-ms", dest="slo_ttft", type=_milliseconds, help="the same, in milliseconds")
    p.add_argument(
        "--slo-tpot",
        dest="slo_tpot",
        type=_duration("--slo-tpot"),
        default=None,
        help="TPOT objective with its unit, e.g. 100ms",
    )
    p.add_argument("--slo-tpot-ms", dest="slo_tpot", type=_milliseconds, help="the same, in milliseconds")


# -- vLLM's serve flags -------------------------------------------------------------------------------
# Every command's serve flags come from their one declaration, vllm_flags.SERVE_FLAGS, and their defaults from the
# dataclass the command fills. Where such a default is not ServeFlags' own (which leaves vLLM's), why; said only here.
ENGINE_WHY = {  # serve, ui, tune and compare start engines here: EngineConfig's defaults, and what it resolves
    "model": "the bundled model, which this CPU serves",
    "host": "this machine only",
    "port": "a free one",
    "max_model_len": "enough for the tasks here, and quick to start on a CPU",
    "served_model_name": "a folder's name, a Hub id itself",
    "cpu_kv_cache_gib": "$VLLM_CPU_KVCACHE_SPACE, else 1",
    "enable_tools": "on where the model's family has a tool parser",
    "enable_reasoning": "on for Qwen3",
    "tool_call_parser": "the family's (hermes for Qwen)",
    "reasoning_parser": "the family's (qwen3 for Qwen3)",
}
PLAN_WHY = {  # plan: the planner's defaults (PlanRequest, ServeSettings)
    "model": "the reference case's model",
    "max_model_len": "the reference case's context",
}


def _defaults(*classes) -> dict:
    """The field defaults of these dataclasses, the later ones winning."""
    return {
        f.name: f.default for cls in classes for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


def _serve_help(flag: vllm_flags.Flag, default, why: str | None, note: str) -> str:
    where = {"gpu": "GPU only: ", "cpu": "CPU build only: "}.get(flag.where, "")
    vllm = flag.vllm_text()
    if default is None or flag.type is bool:
        said = "; ".join(([f"default: {why}"] if why else []) + ([f"vLLM's: {vllm}"] if vllm else []))
        said = said if why or not vllm else f"default: vLLM's, {vllm}"
    elif flag.vllm_default and default == flag.vllm_default[-1][1]:
        said = f"default: {default}, as vLLM's"
    else:
        said = f"default: {default}" + (f", {why}" if why else "") + (f"; vLLM's: {vllm}" if vllm else "")
    return f"{where}{flag.help}{note}" + (f" ({said})" if said else "")


def _serve_flags(p, names, defaults: dict | None = None, why: dict | None = None, notes: dict | None = None) -> None:
    """vLLM's serve flags named by their fields, as SERVE_FLAGS declares them. `defaults` are the command's (its
    dataclass's); one that is not ServeFlags' own needs its reason in `why`. `notes` add to a flag's help."""
    defaults, why, notes = defaults or {}, why or {}, notes or {}
    for name in names:
        flag = vllm_flags.BY_FIELD[name]
        default = defaults.get(name, flag.default)
        if default != flag.default and name not in why:
            raise AssertionError(f"{flag.name} defaults to {default!r} here, not {flag.default!r}: say why")
        text = _serve_help(flag, default, why.get(name), notes.get(name, ""))
        if flag.type is bool and flag.off:
            _on_off(p, name, (flag.name, *flag.aliases), flag.off, text)
        elif flag.type is bool:
            p.add_argument(flag.name, *flag.aliases, dest=name, action="store_true", help=text)
        else:
            kind = _port if name == "port" else _positive if flag.type is int else flag.type
            p.add_argument(
                flag.name,
                *flag.aliases,
                dest=name,
                type=kind,
                default=default,
                choices=flag.choices or None,
                metavar=flag.metavar,
                help=text,
            )


def _revision_flag(p) -> None:
    _serve_flags(p, ("revision",))


# -- serve ------------------------------------------------------------------------------------------
ENGINE_DEFAULTS = _defaults(EngineConfig)


def _engine_flags(p) -> None:
    """vLLM's serve flags, in vLLM's own names (all of SERVE_FLAGS), and the engine's own."""
    _serve_flags(
        p,
        [f.field for f in vllm_flags.SERVE_FLAGS],
        ENGINE_DEFAULTS,
        ENGINE_WHY,
        {"model": "; downloaded before vLLM starts"},
    )
    p.add_argument(
        "--device",
        choices=list(vllm_flags.DEVICES),
        default=None,
        help="which vLLM build runs it (default: this machine's); with --print-command, the one to print for",
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=ENGINE_DEFAULTS["startup_timeout_s"],
        help="seconds to wait for vLLM's /health to answer (default: %(default)s)",
    )
    p.add_argument(
        "--print-command", action="store_true", help="print the exact command this would run, and start nothing"
    )


def engine_config_from_args(args) -> EngineConfig:
    return EngineConfig(
        **{f.field: getattr(args, f.field) for f in vllm_flags.SERVE_FLAGS},
        device=args.device,
        startup_timeout_s=args.startup_timeout,
    )


def _print_command(config: EngineConfig) -> int:
    """`--print-command`: the line a start would run now, checked as a start checks it; nothing starts."""
    check_parsers(config)
    print(config.resolve().command())
    return 0


@command("serve", "start vLLM in the foreground and print its report", _engine_flags)
def serve(args) -> int:
    config = engine_config_from_args(args)
    if args.print_command:
        return _print_command(config)
    processes.stop_on_signals()
    engine = Engine(config)
    print(f"starting vLLM on {args.model} (the first start compiles the model; this takes a minute) ...", flush=True)
    try:
        report = engine.start()
        print(f"serving {models.served_name(args.model)} at {engine.base_url}")
        print(f"log: {engine.log_path}")
        print(report.to_text())
        print("Ctrl-C stops the engine.", flush=True)
        while engine.running:
            time.sleep(1)
        print(f"the engine exited; last log lines:\n{engine.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        engine.stop()


# -- chat, models, prepare-model, doctor ------------------------------------------------------------
def _chat_flags(p) -> None:
    p.add_argument("question", help="what to ask the model")
    _url_flag(p)
    p.add_argument("--model", default=None, help="which of the server's models to ask (default: its only one)")
    p.add_argument(
        "--system",
        default=DEFAULT_SYSTEM_PROMPT,
        help=f"system prompt (default: {DEFAULT_SYSTEM_PROMPT!r}; '' for none)",
    )
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default: 0, greedy)")
    p.add_argument("--max-tokens", type=_positive, default=256, help="for the answer (thinking gets its own budget)")
    _thinking_flag(p)
    _json_flag(p)


@command("chat", "ask a running engine one question; prints the answer and TTFT", _chat_flags)
def chat(args) -> int:
    client = Client(_url(args), model=args.model)
    params = {
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "task": "chat",
        "enable_thinking": args.thinking,
        "system": args.system or None,
    }
    if args.json:
        result = client.chat(args.question, **params)
        print(json.dumps(dict(result.as_dict(), status=result.status), indent=2))
        return 0
    result, thinking = None, False
    for event in client.chat_stream(args.question, **params):
        if event.kind == "reasoning" and not thinking:  # the thoughts stay out of the answer (--json has them)
            print("(thinking ...)", file=sys.stderr, flush=True)
            thinking = True
        if event.kind == "content":
            print(event.text, end="", flush=True)
        result = event.result or result
    if result.notice():
        print(f"\n{result.notice()}", file=sys.stderr)
    print(f"\n\n{result.timing_line()}")
    return 0


@command("models", "list the models a running engine serves", _url_flag)
def list_models(args) -> int:
    for name in Client(_url(args)).models():
        print(name)
    return 0


def _prepare_flags(p) -> None:
    p.add_argument("--force", action="store_true", help="convert it again even when it is already converted")


@command("prepare-model", "convert the bundled model once (a no-op afterwards)", _prepare_flags)
def prepare_model(args) -> int:
    start = time.perf_counter()
    path = models.prepare_bundled_model(force=args.force)
    print(f"{models.BUNDLED_MODEL}: {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def _download_flags(p) -> None:
    p.add_argument("model", help="a Hugging Face id org/name, or a catalog name (its published checkpoint)")
    _revision_flag(p)


@command(
    "download",
    "fetch a model's weights into the Hugging Face cache ahead of time (resumes; HF_TOKEN for "
    "gated models); serve, quantize and compare then start offline",
    _download_flags,
)
def download(args) -> int:
    start = time.perf_counter()
    if models.hub_id(args.model) is None:
        raise WorkbenchError(
            f"{args.model!r} is not a Hugging Face id nor a catalog name: nothing to download. "
            "Fix: give an id such as Qwen/Qwen3-14B-AWQ (a local folder needs no download)."
        )
    path = models.resolve_model(args.model, args.revision)
    print(f"{models.hub_id(args.model)}: {path} ({time.perf_counter() - start:.1f} s)")
    return 0


@command("doctor", "check Python, CPU/GPU, the vLLM build and the bundled model", _json_flag)
def run_doctor(args) -> int:
    checks = doctor.run_checks()
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        for check in checks:
            print(f"{'ok ' if check.ok else '!! '}{check.name:<16} {check.value}")
            if not check.ok and check.fix:
                print(f"    fix: {check.fix}")
    return 0 if all(c.ok for c in checks) else 1


# -- plan -------------------------------------------------------------------------------------------
PLAN_DEFAULTS = _defaults(planner.ServeSettings, planner.PlanRequest)


def _quant_flag(p, default: str | None, help: str) -> None:
    p.add_argument(
        "--quant",
        type=str.lower,
        choices=list(planner.QUANT_FORMATS),
        default=default,
        metavar="FORMAT",
        help=f"the weights' format, one of {', '.join(planner.QUANT_FORMATS)} ({help})",
    )


def _plan_flags(p) -> None:
    _serve_flags(
        p,
        ("model", "revision"),
        PLAN_DEFAULTS,
        PLAN_WHY,
        {"model": "; its config and safetensors headers are read, never its weights"},
    )
    p.add_argument(
        "--gpu",
        default=None,
        help=f"catalog name, forgiving (default: {planner.DEFAULT_GPU}, or the log's GPU with --calibrate-from)",
    )
    p.add_argument("--compare-url", default=None, help="compare a running engine's KV cache with the plan")
    p.add_argument(
        "--gpu-total-gib",
        type=float,
        default=None,
        help="memory as CUDA reports it, if not the catalog's; with it any GPU name plans",
    )
    p.add_argument(
        "--bandwidth-gbs",
        type=float,
        default=None,
        help="memory bandwidth (GB/s), for a GPU not in the catalog: gives the decode bound",
    )
    _quant_flag(p, None, "default: the one the checkpoint's config.json declares, else bf16")
    p.add_argument(
        "--group-size",
        type=_positive,
        default=PLAN_DEFAULTS["group_size"],
        help="with a grouped format (gptq, awq, w4a16): weights per scale (default: %(default)s)",
    )
    _serve_flags(
        p,
        (
            "max_model_len",
            "gpu_memory_utilization",
            "kv_cache_dtype",
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "max_num_batched_tokens",
            "max_num_seqs",
        ),
        PLAN_DEFAULTS,
        PLAN_WHY,
    )
    p.add_argument("--parallel", action="store_true", help="sweep TP × PP layouts, memory per GPU, and pick one")
    p.add_argument("--gpus-per-node", type=_positive, default=8, help="with --parallel: GPUs in one machine")
    p.add_argument(
        "--vllm-version",
        default=None,
        help=f"default: the log's with --calibrate-from, else {planner.DEFAULT_VLLM_VERSION}",
    )
    p.add_argument(
        "--compile-cache",
        choices=planner.COMPILE_CACHES,
        default=PLAN_DEFAULTS["compile_cache"],
        help="torch.compile's cache at start-up: cold on a first start (its compile raises the profile peak on "
        "vLLM's V2 model runner), warm on a restart with the same settings (default: %(default)s)",
    )
    p.add_argument("--weights-gib", type=float, default=None, help="measured weights (vLLM's 'Model loading took')")
    p.add_argument(
        "--calibrate-from",
        metavar="LOG",
        default=None,
        help="a vLLM start-up log from this machine: fit the overheads to it, then plan these settings",
    )
    p.add_argument(
        "--log-model",
        default=None,
        help="with --calibrate-from: the model the log served (catalog name, "
        "folder or Hugging Face id), when the log's own name for it cannot be resolved here",
    )
    p.add_argument(
        "--kv-space-gib",
        type=float,
        default=None,
        help="with a CPU-build log: the VLLM_CPU_KVCACHE_SPACE to plan for (default: the log's)",
    )
    p.add_argument("--claim-tok-s", type=float, default=None, help="check a claimed decode speed at max_model_len")
    p.add_argument("--claim-ttft-s", type=float, default=None, help="check a claimed TTFT for a max_model_len prompt")
    p.add_argument(
        "--fit-free",
        action="store_true",
        help="with --gpu local: lower --gpu-memory-utilization to what is free now (a desktop holds the rest)",
    )
    p.add_argument(
        "--serve-flags",
        action="store_true",
        help="print only the `vllm serve` flags after the model, for a script (`make run`); "
        "when the plan does not fit, its reason instead, and exit 1",
    )
    _json_flag(p)


def plan_request_from_args(args) -> planner.PlanRequest:
    settings_ = planner.ServeSettings(
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        kv_cache_dtype=args.kv_cache_dtype,
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        max_num_batched_tokens=args.max_num_batched_tokens,
        max_num_seqs=args.max_num_seqs,
        compile_cache=args.compile_cache,
    )
    return planner.PlanRequest(
        model=args.model,
        revision=args.revision,
        log_model=args.log_model,
        gpu=args.gpu,
        gpu_total_gib=args.gpu_total_gib,
        bandwidth_gbs=args.bandwidth_gbs,
        quant=args.quant,
        group_size=args.group_size,
        settings=settings_,
        vllm_version=args.vllm_version,
        weights_gib=args.weights_gib,
        log_path=args.calibrate_from,
        kv_space_gib=args.kv_space_gib,
        parallel=args.parallel,
        gpus_per_node=args.gpus_per_node,
        claim_tok_s=args.claim_tok_s,
        claim_ttft_s=args.claim_ttft_s,
        fit_free=args.fit_free,
    )


@command("plan", "plan GPU memory: weights, KV cache, concurrency, roofline", _plan_flags)
def plan(args) -> int:
    request = plan_request_from_args(args)
    if args.compare_url:  # the server's own numbers, asked here: the planner takes data, not a client
        answer = planner.compare(Client(args.compare_url).served_cache(), request, args.compare_url)
    else:
        answer = planner.plan(request)
    if args.serve_flags:
        return _print_serve_flags(answer)
    _print(answer, args.json)
    return 0 if answer.ok else 1


def _print_serve_flags(answer) -> int:
    """`plan --serve-flags`: the flags on stdout, the plan's warnings on stderr; a plan that does not fit prints its
    reason and suggestions on stderr instead, and exits 1."""
    if not isinstance(answer, planner.GpuAnswer):
        raise ConfigError(
            "--serve-flags prints one GPU's `vllm serve` flags; this request answers with "
            f"{type(answer).__name__}. Fix: drop --parallel and --calibrate-from with a CPU-build log."
        )
    for line in answer.plan.warnings:
        print(f"note: {line}", file=sys.stderr)
    if not answer.plan.fits:
        print(f"{answer.plan.model} does not fit on {answer.plan.gpu}: {answer.plan.reason}", file=sys.stderr)
        for line in answer.plan.suggestions:
            print(f"try: {line}", file=sys.stderr)
        return 1
    print(shlex.join(answer.plan.flags.args()))
    return 0


# -- quantize, eval-ppl -----------------------------------------------------------------------------
def _quantize_flags(p) -> None:
    p.add_argument("model", help=f"name, folder or Hugging Face id, downloaded first (e.g. {models.BUNDLED_MODEL})")
    _revision_flag(p)
    p.add_argument("--out", default=None, help="new folder for the checkpoint (the same folder resumes a stopped run)")
    p.add_argument(
        "--method",
        choices=["gptq", "rtn"],
        default="gptq",
        help="gptq: calibrated on sample text; rtn: round-to-nearest, no calibration (default: gptq)",
    )
    p.add_argument(
        "--bits", type=int, choices=[4, 8], default=4, help="bits per weight (vLLM's GPTQ kernels: 4 or 8; default: 4)"
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=quantize.AUTO,
        help="default: 128 where the model's widths divide by it, else the largest that does",
    )
    p.add_argument("--desc-act", action="store_true", help="act-order; vLLM 0.32 refuses it (checked first)")
    p.add_argument(
        "--no-act-group-aware",
        dest="act_group_aware",
        action="store_false",
        help="turn off GPTQModel's static group-aware activation order (on by default)",
    )
    p.add_argument("--asym", action="store_true", help="asymmetric; vLLM refuses it for GPTQ (checked first)")
    p.add_argument("--damp", type=float, default=0.05, help="dampening, fraction of the Hessian diagonal mean")
    p.add_argument("--samples", type=int, default=32, help="calibration samples")
    p.add_argument("--seq-len", type=int, default=512, help="tokens per calibration sample")
    p.add_argument(
        "--calibration",
        nargs="*",
        help=".txt or .jsonl files (default: chat-formatted Chinese and English contracts, tool calls and Python docs)",
    )
    p.add_argument(
        "--calibration-dataset",
        default=None,
        help="a Hub dataset id[:file], e.g. allenai/c4:en/c4-validation.00000-of-00008.json.gz",
    )
    p.add_argument("--calibration-column", default="text", help="the dataset's text column")
    p.add_argument("--dry-run", action="store_true", help="print the plan (RAM, GPU, disk, time) and stop")
    p.add_argument("--gpu", default=None, help="plan for this GPU (e.g. 'RTX 3090') instead of this machine's")
    p.add_argument("--ram-gib", type=float, default=None, help="plan for this much RAM instead of this machine's")
    _json_flag(p)


@command("quantize", "GPTQ (or round-to-nearest) INT4/INT8 checkpoint that vLLM serves", _quantize_flags)
def run_quantize(args) -> int:
    settings_ = quantize.QuantizeSettings(
        method=args.method,
        bits=args.bits,
        group_size=args.group_size,
        desc_act=args.desc_act,
        sym=not args.asym,
        damp_percent=args.damp,
        samples=args.samples,
        seq_len=args.seq_len,
        act_group_aware=args.act_group_aware,
    )
    if args.dry_run:
        plan_ = quantize.plan_run(args.model, settings_, gpu=args.gpu, ram_gib=args.ram_gib)
        print(json.dumps(plan_.as_dict(), indent=2) if args.json else plan_.to_text())
        return 0 if plan_.fits else 1
    if not args.out:
        raise WorkbenchError("--out is missing. Fix: name a new folder for the checkpoint, or add --dry-run.")
    bars = []

    def show(progress):
        if not bars:
            bars.append(
                tqdm(
                    total=progress.layers,
                    unit="layer",
                    disable=args.json,
                    desc=f"{args.method} int{args.bits} g{args.group_size or 'auto'}",
                )
            )
        bars[0].n = progress.layer
        bars[0].refresh()

    try:
        if args.revision or models.hub_id(args.model):  # the weights first, with the download's own progress bar
            args.model = str(models.resolve_model(args.model, args.revision))
        result = quantize.quantize(
            args.model,
            args.out,
            settings_,
            args.calibration or None,
            on_progress=show,
            calibration_dataset=args.calibration_dataset,
            calibration_column=args.calibration_column,
        )
    except KeyboardInterrupt:
        work = quantize.work_dir(Path(args.out).expanduser().resolve())
        resume = f"; rerun the same command to resume ({work} keeps the finished layers)" if work.exists() else ""
        print(f"\nstopped; {args.out} was not written{resume}.", file=sys.stderr)
        return 130
    finally:
        for bar in bars:
            bar.close()
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.to_text())
    return 0


def _eval_ppl_flags(p) -> None:
    _url_flag(p)
    p.add_argument("--model", default=None, help="which of the server's models to ask (default: its only one)")
    p.add_argument("--text", default=None, help="a text file (default: a held-out slice of Python's docs)")
    _json_flag(p)


@command("eval-ppl", "perplexity of a served model on a text (via prompt_logprobs)", _eval_ppl_flags)
def eval_ppl(args) -> int:
    result = quality.eval_ppl(Client(_url(args), model=args.model), args.text)
    print(
        json.dumps(result, indent=2)
        if args.json
        else f"{result['model']}: perplexity {result['ppl']:.3f} over {result['tokens']:,} tokens"
    )
    return 0


# -- document QA --------------------------------------------------------------------------------------
def _docqa_flags(p) -> None:
    p.add_argument("file", help="the document: PDF, DOCX, TXT, MD or HTML")
    p.add_argument(
        "--template",
        choices=["contract", "minutes"],
        default="contract",
        help="the fields to extract (default: contract)",
    )
    p.add_argument("--question", default=None, help="a free question instead of a template")
    _thinking_flag(p)
    _url_flag(p)
    _json_flag(p)


@command("docqa", "ask about a document (PDF, DOCX, TXT, MD, HTML), with verified quotes", _docqa_flags)
def run_docqa(args) -> int:
    document = documents.load(args.file)
    template = "question" if args.question is not None else args.template
    stream = (lambda text: print(text, end="", flush=True)) if not args.json else None
    answer = docqa.ask(Client(_url(args), thinking=args.thinking), document, template, args.question, on_text=stream)
    if args.json:
        print(answer.to_json().rstrip())
        return 0
    print("\n")
    print(answer.fields_table())
    print(f"\n{document.name}: {document.chars:,} characters · {answer.timing_line()}")
    return 0


def _docqa_eval_flags(p) -> None:
    _url_flag(p)
    p.add_argument("--folder", default=None, help="default: the cache's docqa-eval (generated if missing)")
    p.add_argument("--count", type=_positive, default=10, help="contracts to generate (default: 10)")
    p.add_argument("--limit", type=_positive, default=None, help="only the first N contracts")
    p.add_argument(
        "--formats",
        nargs="+",
        choices=["pdf", "docx"],
        default=["pdf"],
        help="the contracts' file formats (default: pdf)",
    )
    _json_flag(p)


@command("docqa-eval", "field accuracy and verified quotes on the generated contract set", _docqa_eval_flags)
def docqa_eval(args) -> int:
    folder = Path(args.folder) if args.folder else settings.cache_dir() / "docqa-eval"
    show = (
        None
        if args.json
        else (
            lambda r: print(
                f"{r['document']:<22} {r['field']:<24} value "
                f"{'ok ' if r['value_correct'] else 'no '} quote "
                f"{'ok ' if r['quote_correct'] else 'no '} verified "
                f"{'yes' if r['verified'] else 'no'}",
                flush=True,
            )
        )
    )
    report = docqa_dataset.evaluate(
        Client(_url(args)), folder, tuple(args.formats), args.limit, on_row=show, count=args.count
    )
    print(report.to_json().rstrip() if args.json else "\n" + report.to_text())
    return 0


# -- context reliability ------------------------------------------------------------------------------
def _context_flags(p) -> None:
    p.add_argument(
        "documents",
        nargs="*",
        metavar="DOC",
        help="PDF, DOCX, TXT, MD or HTML files (default: a generated Chinese and English contract)",
    )
    p.add_argument(
        "--lengths",
        type=_core(context.parse_lengths),
        default=context.grid.DEFAULT_LENGTHS,
        help="context lengths in the served model's tokens, e.g. 1024,2048,4K (default 1024,2048,4096)",
    )
    p.add_argument(
        "--depths",
        type=_core(context.parse_depths),
        default=context.grid.DEFAULT_DEPTHS,
        help="where the facts go, in %% of the document (default 0,25,50,75,100)",
    )
    p.add_argument("--facts", type=_positive, default=2, help="facts planted per cell and document (default 2)")
    p.add_argument("--target", type=float, default=0.95, help="the recall that counts as reliable, in (0, 1]")
    p.add_argument("--seed", type=int, default=0, help="where the facts are planted, and the contracts generated")
    p.add_argument(
        "--thinking",
        type=_core(context.parse_thinking),
        default=None,
        help="auto (default: off and on where the server has a reasoning parser), or on,off,default",
    )
    p.add_argument("--gpu", default=None, help=f"plan the memory on this GPU (default {planner.DEFAULT_GPU})")
    p.add_argument("--gpu-total-gib", type=float, default=None, help="with --gpu: a card not in the catalog")
    _url_flag(p)
    p.add_argument(
        "--out",
        default="context-report",
        help="folder for context.json/.md/.csv and the maps (default ./context-report; the store is under it)",
    )
    p.add_argument("--store", default=None, help="where finished cells are kept (default: OUT/store)")
    _json_flag(p)


@command(
    "context",
    "how much of the context can I trust? planted facts over depth × length, beside the memory plan",
    _context_flags,
)
def run_context(args) -> int:
    request = context.ContextRequest(
        tuple(args.documents),
        args.lengths,
        args.depths,
        args.facts,
        args.target,
        args.seed,
        args.gpu,
        args.gpu_total_gib,
        args.thinking,
        args.store,
    )
    report = context.run(
        request,
        _url(args),
        args.out,
        on_cell=None if args.json else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    files = report.save(args.out, "context")
    for m in report.maps:
        path = Path(args.out) / f"recall-{m['mode'].replace(' ', '-')}.png"
        plots.recall_map(m).savefig(path, dpi=110)
    if args.json:
        print(report.to_json().rstrip())
        return 0
    print(report.to_text())
    print(f"saved: {files['json']}, {files['md'].name}, {files['csv'].name} and the maps (recall-*.png)")
    return 0


# -- function calling ---------------------------------------------------------------------------------
def _policy(args, audit_name: str):
    """The demo tools under the policy, audited under the cache (or to --audit); --confirm allow says yes."""
    data = settings.cache_dir() / "tools"
    audit = (
        Path(args.audit)
        if getattr(args, "audit", None)
        else data / f"{audit_name}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    )
    confirm = (lambda name, arguments: True) if getattr(args, "confirm", "deny") == "allow" else None
    return demo_tools.policy(data, audit, tools_file=getattr(args, "tools_file", None), confirm=confirm)


def _tools_run_flags(p) -> None:
    p.add_argument("--message", required=True, help="the user's message to the model")
    p.add_argument("--tools-file", default=None, help="JSON list of {name, description, parameters, result}")
    p.add_argument(
        "--mode",
        choices=agent.MODES,
        default=agent.DEFAULT_MODE,
        help="native: vLLM's tool parser; constrained: schema-guided decoding of one call; two-stage: the "
        "tool first, then its arguments (default: %(default)s)",
    )
    p.add_argument(
        "--few-shot",
        action=argparse.BooleanOptionalAction,
        default=agent.DEFAULT_FEW_SHOT,
        help="worked examples in the system prompt",
    )
    p.add_argument(
        "--tool-choice",
        default="auto",
        help="auto (the model decides), required (it must call a tool first) or a tool's name",
    )
    p.add_argument("--confirm", choices=["allow", "deny"], default="deny", help="answer for sensitive tools")
    p.add_argument("--audit", default=None, help="audit log path (default: under the cache)")
    _thinking_flag(p)
    _url_flag(p)
    _json_flag(p)


@command("tools-run", "one function-calling turn through the tool policy, audited", _tools_run_flags)
def tools_run(args) -> int:
    policy = _policy(args, "audit")
    show = (
        None
        if args.json
        else (
            lambda s: print(
                f"[{s.status}] {s.tool}({json.dumps(s.arguments, ensure_ascii=False)})"
                f" -> {s.reason if s.status != 'executed' else s.result}"
            )
        )
    )
    turn = agent.run_turn(
        Client(_url(args)),
        policy,
        args.message,
        args.mode,
        on_step=show,
        tool_choice=args.tool_choice,
        few_shot=args.few_shot,
        thinking=args.thinking,
    )
    if args.json:
        print(
            json.dumps(
                dict(turn.as_dict(), audit_log=str(policy.audit.path)), ensure_ascii=False, indent=2, default=str
            )
        )
    else:
        print(f"\n{turn.answer}\n\naudit log: {policy.audit.path}")
    return 0


def _tools_eval_flags(p) -> None:
    p.add_argument(
        "--suite",
        choices=["project", "bfcl"],
        default="project",
        help="project: the 44 English and Chinese cases (dates included); bfcl: BFCL v4's own data and "
        "AST checker (bfcl-eval, downloaded once into the cache)",
    )
    p.add_argument(
        "--designs",
        nargs="+",
        choices=toolseval.DESIGN_NAMES,
        default=None,
        help="a mode, optionally with +few-shot (default: all six; with --suite bfcl the three modes)",
    )
    p.add_argument(
        "--categories",
        nargs="+",
        default=None,
        metavar="CATEGORY",
        help=f"with --suite bfcl: {', '.join(bfcl.CATEGORIES)} (default: all)",
    )
    p.add_argument(
        "--per-category",
        type=_positive,
        default=None,
        help="with --suite bfcl: entries drawn per category, stratified, with --seed (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="with --suite bfcl and --per-category: the entries drawn")
    p.add_argument("--concurrency", type=_positive, default=4, help="requests in flight (default 4)")
    p.add_argument(
        "--thinking",
        choices=list(toolseval.THINKING),
        default="default",
        help="default: each step's own (off for constrained calls and the two-stage choice); on, off, or "
        "both (each design scored with thinking on against off; needs a reasoning parser)",
    )
    _url_flag(p)
    _json_flag(p)
    p.add_argument("--save", default=None, help="folder for the report's JSON, CSV and Markdown")


@command(
    "tools-eval", "scores of tool calls per category and mode: the project's cases, or BFCL v4's", _tools_eval_flags
)
def tools_eval(args) -> int:
    client = Client(_url(args))
    if args.suite == "bfcl":
        designs = [toolseval.parse_design(n) for n in args.designs or agent.MODES]
        bar = []  # opened with the first scored entry: a design the server cannot serve is refused before it

        def show(done, total, row):
            if not bar:
                bar.append(tqdm(total=total, unit="call", disable=args.json, file=sys.stderr, desc="BFCL v4"))
            bar[0].update(1)

        try:
            report = bfcl.evaluate(
                client,
                args.categories,
                args.per_category,
                designs,
                args.seed,
                args.concurrency,
                on_row=show,
                thinking=toolseval.THINKING[args.thinking],
            )
        finally:
            for b in bar:
                b.close()
    else:
        designs = [
            toolseval.parse_design(n) for n in args.designs or [toolseval.design_name(*d) for d in toolseval.DESIGNS]
        ]
        report = toolseval.compare(
            client,
            lambda name: _policy(args, f"eval-{name}"),
            designs,
            thinking=toolseval.THINKING[args.thinking],
            concurrency=args.concurrency,
        )
    files = report.save(args.save, f"tools-eval-{args.suite}") if args.save else None
    _print(report, args.json)
    if files and not args.json:
        print(f"saved: {files['json']}, .csv and .md")
    return 0


# -- bench, tune --------------------------------------------------------------------------------------
def _bench_flags(p) -> None:
    _url_flag(p)
    load = p.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency",
        type=_core(bench.parse_concurrency),
        default=[1],
        help="levels, e.g. 1,2,4 (default 1), or sweep: 1, 2, 4, ... until the server saturates",
    )
    load.add_argument("--request-rate", type=float, default=None, help="requests per second (Poisson arrivals)")
    p.add_argument("--burstiness", type=float, default=1.0, help="with --request-rate: 1 is Poisson, <1 burstier")
    _workload_flags(p, 16, 128, 64, " (at most, for docqa and ab)")
    p.add_argument(
        "--dataset",
        choices=bench.DATASETS,
        default="random",
        help="the prompts: vLLM's random dataset (the same prompts as `vllm bench serve` for the seed), questions "
        "about generated contracts, or the worked A/B example's "
        "questions (default: random)",
    )
    p.add_argument("--seed", type=int, default=0, help="for the prompts drawn")
    _slo_flags(p)
    p.add_argument("--gpu", default=None, help="the server's GPU (catalog name), for the roofline bound")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured requests before each level (default 1)")
    p.add_argument(
        "--repeats",
        type=_positive,
        default=1,
        help="runs of each level; with 2 or more, each median gets a 95 %% interval over the runs",
    )
    p.add_argument(
        "--ignore-eos",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="generate exactly --output-len tokens (vLLM)",
    )
    _client_cpus_flag(p)
    _json_flag(p)
    p.add_argument("--save", default=None, help="folder for bench.json, bench.csv and bench.md")


def _client_cpus_flag(p) -> None:
    p.add_argument(
        "--client-cpus",
        type=_core(placement.parse_cpus),
        default=None,
        metavar="LIST",
        help="run this command on these CPUs only (as taskset -c takes them, e.g. 0), apart from a server "
        "on the same host: the result says whether they overlap",
    )


@command("bench", "serving benchmark: TTFT, TPOT, ITL, latency, throughput and goodput per load", _bench_flags)
def run_bench(args) -> int:
    workload = bench.Workload(args.num_prompts, args.input_len, args.output_len, args.dataset, args.seed)
    report = bench.run(
        _url(args),
        workload,
        concurrency=args.concurrency,
        rate=args.request_rate,
        burstiness=args.burstiness,
        slo=bench_report.SLO(args.slo_ttft, args.slo_tpot),
        gpu=args.gpu,
        ignore_eos=args.ignore_eos,
        progress=not args.json,
        warmup=args.warmup,
        repeats=args.repeats,
        client_cpus=args.client_cpus,
    )
    files = report.save(args.save, "bench") if args.save else None
    _print(report, args.json)
    if files and not args.json:
        print(f"saved: {files['json']}, bench.csv and bench.md")
    return 0


def _tune_flags(p) -> None:
    _serve_flags(p, ("model", "revision"), ENGINE_DEFAULTS, ENGINE_WHY, {"model": "; each candidate serves it"})
    p.add_argument("--concurrency", type=_positive, default=4, help="requests in flight (default 4)")
    _workload_flags(p, 16, 128, 32)
    _slo_flags(p)
    p.add_argument("--gpu", default=None, help="plan for this GPU (catalog name) instead of this machine")
    p.add_argument("--gpu-total-gib", type=float, default=None, help="with --gpu: a card not in the catalog")
    _quant_flag(p, "bf16", "for the GPU plan; default: %(default)s")
    p.add_argument("--max-candidates", type=_positive, default=None, help="benchmark at most this many")
    p.add_argument(
        "--repeats",
        type=_positive,
        default=1,
        help="benchmark runs per candidate; with 2 or more the ratio over vLLM's defaults gets an interval",
    )
    _client_cpus_flag(p)
    p.add_argument(
        "--server-cpus",
        type=_core(placement.parse_cpus),
        default=None,
        metavar="LIST",
        help="start each candidate's engine on these CPUs (the benchmark then takes the others)",
    )
    p.add_argument("--dry-run", action="store_true", help="only propose and prune; start no engine")
    _json_flag(p)


@command(
    "tune",
    "the engine flags that serve a workload best: planner-pruned candidates, each started and "
    "benchmarked, ranked by goodput",
    _tune_flags,
)
def run_tune(args) -> int:
    workload = bench.Workload(args.num_prompts, args.input_len, args.output_len)
    if args.dry_run:
        proposed = tune_plan.dry_run(
            args.model, workload, args.concurrency, args.gpu, args.gpu_total_gib, args.quant, args.revision
        )
        print(json.dumps(proposed.rows(), ensure_ascii=False, indent=2) if args.json else proposed.to_text())
        return 0
    report = tune.tune(
        args.model,
        workload,
        args.concurrency,
        bench_report.SLO(args.slo_ttft, args.slo_tpot),
        args.gpu,
        args.gpu_total_gib,
        args.quant,
        args.max_candidates,
        on_event=(lambda text: print(text, file=sys.stderr, flush=True)),
        repeats=args.repeats,
        client_cpus=args.client_cpus,
        server_cpus=args.server_cpus,
        revision=args.revision,
    )
    _print(report, args.json)
    return 0 if report["serve"] else 1


# -- ab run -------------------------------------------------------------------------------------------
COMPARE_DEFAULTS = _defaults(compare_request.CompareRequest)


def _compare_flags(p) -> None:
    p.add_argument(
        "--candidate",
        action="append",
        required=True,
        metavar="SPEC",
        help="[NAME=]CHECKPOINT-OR-URL[,thinking=on|off][,revision=R] [vLLM serve flags], e.g. "
        "'int4=ckpt/gptq --max-num-seqs 8', 'awq=Qwen/Qwen3-14B-AWQ,revision=main' or "
        "http://127.0.0.1:8000; repeat it (two at least); the first is the baseline. thinking=on/off "
        "scores one server with thinking on against off; revision: of a Hugging Face id",
    )
    p.add_argument(
        "--tasks",
        type=_core(compare_request.parse_tasks),
        default=compare_request.DEFAULT_TASKS,
        help=f"comma-separated, of: {', '.join(compare_request.TASKS)} (default: {','.join(compare_request.DEFAULT_TASKS)})",
    )
    p.add_argument("--items", type=_positive, default=None, help="at most this many items per task (default: all)")
    p.add_argument("--seed", type=int, default=0, help="for the items drawn (tools when capped, BFCL)")
    p.add_argument(
        "--tools-design",
        choices=toolseval.DESIGN_NAMES,
        default="native",
        help="how tools and bfcl ask for calls (default native: vLLM's tool parser)",
    )
    p.add_argument(
        "--bfcl-categories",
        nargs="+",
        default=None,
        metavar="CATEGORY",
        help=f"with bfcl: of {', '.join(bfcl.CATEGORIES)} (default: all)",
    )
    p.add_argument(
        "--bfcl-per-category",
        type=_positive,
        default=5,
        help="with bfcl: entries drawn per category (default: %(default)s)",
    )
    p.add_argument("--docqa-count", type=_positive, default=3, help="with docqa: generated contracts (9 fields each)")
    p.add_argument("--ab-config", default=None, help=f"with ab: an A/B config (e.g. {abconfig.EXAMPLE_NAME})")
    p.add_argument("--ab-variant", default=None, help="with ab: the variant to run (default: its baseline)")
    p.add_argument(
        "--workload",
        type=_core(compare_request.parse_workload),
        default=((1,), None),
        help="the benchmark: c=1,2 (concurrency levels), rate=2 (requests/s) or none (default c=1)",
    )
    _workload_flags(p, 8, 128, 32)
    p.add_argument("--repeats", type=_positive, default=2, help="benchmark runs per level, for the speed intervals")
    _slo_flags(p)
    p.add_argument("--gpu", default=None, help="plan each candidate's memory on this GPU (catalog name)")
    p.add_argument("--gpu-total-gib", type=float, default=None, help="with --gpu: a card not in the catalog")
    p.add_argument(
        "--plan-context",
        type=_positive,
        default=COMPARE_DEFAULTS["plan_context"],
        help=f"the context the memory plan asks at (default: %(default)s, {PLAN_WHY['max_model_len']})",
    )
    _serve_flags(
        p,
        ("max_model_len",),
        COMPARE_DEFAULTS,
        ENGINE_WHY,
        {"max_model_len": "; checkpoints are served with it here, unless a candidate's flags say otherwise"},
    )
    p.add_argument(
        "--out",
        default="compare-report",
        help="folder for report.html, report.md, report.csv and compare.json (default: ./compare-report)",
    )
    p.add_argument("--store", default=None, help="where finished results are kept (default: the cache)")
    _json_flag(p)


def compare_request_from_args(args) -> compare_request.CompareRequest:
    levels, rate = args.workload or ((), None)
    return compare_request.CompareRequest(
        candidates=tuple(compare_request.parse_candidate(c) for c in args.candidate),
        tasks=args.tasks,
        settings=compare_request.TaskSettings(
            items=args.items,
            seed=args.seed,
            tools_design=args.tools_design,
            bfcl_categories=tuple(args.bfcl_categories or ()),
            bfcl_per_category=args.bfcl_per_category,
            docqa_count=args.docqa_count,
            ab_config=args.ab_config,
            ab_variant=args.ab_variant,
        ),
        workload=(
            bench.Workload(args.num_prompts, args.input_len, args.output_len, seed=args.seed) if args.workload else None
        ),
        concurrency=levels,
        rate=rate,
        repeats=args.repeats,
        slo=bench_report.SLO(args.slo_ttft, args.slo_tpot),
        gpu=args.gpu,
        gpu_total_gib=args.gpu_total_gib,
        plan_context=args.plan_context,
        max_model_len=args.max_model_len,
        store=args.store,
    )


@command(
    "compare",
    "is a quantized model good enough? candidates on the same tasks, benchmark and GPU plan, with a verdict per task",
    _compare_flags,
)
def run_compare(args) -> int:
    processes.stop_on_signals()  # `kill PID` unwinds too, so the engine it serves is stopped
    report = compare.run(
        compare_request_from_args(args),
        on_event=None if args.json else (lambda e: print(e, file=sys.stderr, flush=True)),
    )
    files = report.save_report(args.out)
    _print(report, args.json)
    if not args.json:
        print(f"saved: {files['html']}, {files['md'].name}, {files['csv'].name} and {files['json'].name}")
    return 0


def _ab_run_flags(p) -> None:
    p.add_argument("config", help=f"YAML config (variants, dataset, assertions), e.g. {abconfig.EXAMPLE_NAME}")
    _url_flag(p)
    p.add_argument("--limit", type=_positive, default=None, help="only the first N items")
    p.add_argument("--repeats", type=_positive, default=None, help="override the config's repeats")
    p.add_argument("--concurrency", type=_positive, default=None, help="override the config's concurrency")
    p.add_argument(
        "--cache", default=None, help="folder that keeps the answers (default: abtest/ under the workbench cache)"
    )
    p.add_argument("--no-cache", action="store_true", help="ask again even when an answer is cached")
    p.add_argument(
        "--save",
        default=None,
        help="folder for the report's JSON, the trials' CSV and the Markdown (default: a temp one)",
    )
    _json_flag(p)


@command("ab run", "run a config's variants over its dataset; prints pass rates and a verdict", _ab_run_flags)
def ab_run(args) -> int:
    config = abconfig.with_changes(
        abconfig.load_config(args.config),
        args.config,
        limit=args.limit,
        repeats=args.repeats,
        concurrency=args.concurrency,
    )
    cache = None if args.no_cache else (Store(args.cache) if args.cache else "default")
    with tqdm(unit="trial", disable=args.json, file=sys.stderr, desc=config.name) as bar:

        def show(done, total, trial):
            bar.total = total
            bar.update(1)

        report = abtest.run(config, args.url or settings.engine_url(), cache=cache, on_trial=show)
    files = report.save(args.save or tempfile.mkdtemp(prefix="ab-"), Path(args.config).stem)
    if args.json:
        print(
            json.dumps(
                dict(report.summary(), files=[str(files["json"]), str(files["csv"])]), ensure_ascii=False, indent=2
            )
        )
        return 0
    headers, rows = report.table()
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(f"\n{report.verdict}\n\ntrials: {files['csv']}\nreport: {files['json']}")
    return 0


# -- report -------------------------------------------------------------------------------------------
def _report_flags(p) -> None:
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL (default: $WORKBENCH_DB_URL); the password from $WORKBENCH_DB_PASSWORD, never in the URL",
    )
    p.add_argument("--table", default=None, help="the table to report on (default: the spec's)")
    p.add_argument("--date-column", default=None, help="the table's date column (default: the spec's)")
    p.add_argument("--measure", dest="measures", action="append", default=[], help="a numeric column (repeatable)")
    p.add_argument("--dimension", default=None, help="the column to break the totals down by (e.g. region)")
    p.add_argument("--date", default="yesterday", help="YYYY-MM-DD, START..END (backfill), yesterday or today")
    p.add_argument("--out", default="report", help="folder; each date gets its own folder in it")
    p.add_argument("--spec", default=None, help="a YAML spec (see --example-spec); the flags given override it")
    p.add_argument(
        "--lang",
        dest="language",
        choices=report_spec.LANGUAGES,
        default=None,
        help="the prose's language (default: the spec's, else en)",
    )
    _url_flag(p, "engine URL of the model that writes the prose (default: $WORKBENCH_URL; none: a template writes it)")
    p.add_argument("--force", action="store_true", help="redo dates that are already done")
    p.add_argument("--print-schedule", action="store_true", help="print a cron line and a systemd timer; run nothing")
    p.add_argument("--demo-db", default=None, metavar="PATH", help="create the DEMO sales database at PATH and stop")
    p.add_argument("--example-spec", action="store_true", help="print a worked YAML spec and stop")
    _json_flag(p)


@command(
    "report", "the daily report from a database: facts computed in code, prose checked against them", _report_flags
)
def run_report(args) -> int:
    if args.demo_db:
        path = demo_db.make_demo_db(args.demo_db)
        print(
            f"{path}: DEMO sales database (sales: day, region, revenue, orders, units; {demo_db.DAYS} days from "
            f"{demo_db.START}); planted anomalies: "
            + ", ".join(f"{a.day} {a.region} {a.kind}" for a in demo_db.LABELS if a.kind != "missing")
            + ", West missing 2026-09-08..14"
        )
        return 0
    if args.example_spec:
        print(report_spec.EXAMPLE, end="")
        return 0
    spec = report_spec.build(
        args.spec,
        db=args.db or settings.report_db_url(),
        table=args.table,
        date_column=args.date_column,
        measures=args.measures,
        dimension=args.dimension,
        language=args.language,
    )
    url = args.url or settings.engine_url()
    if args.print_schedule:
        print(daily.schedule(spec, args.out, args.url))
        return 0
    dates = report_spec.parse_dates(args.date)
    bars = []

    def show(fraction, message):  # called once every day's facts are computed: no bar before a refusal
        if not bars:
            bars.append(tqdm(total=100, disable=args.json, file=sys.stderr, desc="report", unit="%"))
        bars[0].n = round(100 * fraction)
        bars[0].set_postfix_str(message[:60])

    try:
        report = daily.generate(spec, dates, args.out, Client(url) if url else None, show, force=args.force)
    finally:
        for bar in bars:
            bar.close()
    _print(report, args.json)
    return 0


# -- ui -------------------------------------------------------------------------------------------------
def _ui_flags(p) -> None:
    _engine_flags(p)
    _url_flag(p, "attach to a running engine instead of starting one")
    p.add_argument(
        "--ui-host",
        default="127.0.0.1",
        help="the address the app listens on (default: 127.0.0.1, this machine only; beyond it needs --auth)",
    )
    p.add_argument("--ui-port", type=_port, default=7860, help="the app's port (default: 7860)")
    p.add_argument("--share", action="store_true", help="a public Gradio link (needs --auth)")
    p.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASSWORD",
        help="a login for the app (default: $WORKBENCH_AUTH); needed beyond 127.0.0.1 and with --share",
    )
    p.add_argument(
        "--no-engine",
        action="store_true",
        help="serve the app without starting the engine (Plan and the read-only parts; Start is on each tab)",
    )


@command("ui", "open the Gradio workbench (starts the engine unless --url or --no-engine)", _ui_flags)
def ui(args) -> int:
    if args.print_command:
        if args.url:
            raise WorkbenchError(
                f"--print-command prints the command that starts an engine, and --url {args.url} "
                "attaches to one that runs already: nothing would start. Fix: drop one of them."
            )
        return _print_command(engine_config_from_args(args))
    from workbench.ui import app  # the app's entry point: gradio loads only for this command

    url = args.url or settings.engine_url()
    app.launch(
        engine_config_from_args(args),
        url=url,
        log_path=settings.engine_log() if url else None,
        host=args.ui_host,
        port=args.ui_port,
        share=args.share,
        auth=args.auth or settings.ui_auth(),
        start_engine=not args.no_engine,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    groups = {}
    for name, help, flags, run in COMMANDS:
        group, _, leaf = name.rpartition(" ")
        where = sub
        if group:  # `workbench ab run`: the group's own subcommands
            if group not in groups:
                groups[group] = sub.add_parser(group, help=GROUPS[group]).add_subparsers(
                    dest=f"{group}_command", required=True
                )
            where = groups[group]
        p = where.add_parser(leaf, help=help, description=help)
        flags(p)
        p.set_defaults(func=run)
    return parser


def _stdout_to_devnull() -> None:
    """Python's advice for SIGPIPE (the `signal` module's docs): point stdout at devnull, so that the flush at exit
    does not fail again on the closed pipe. Not where stdout is no file (a test's capture)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Bad flags are argparse's (usage and exit 2). Everything the core refuses arrives here as a
    WorkbenchError and is printed once, as `error: ...` with the fix, exit 2; a path that cannot be
    read likewise. Ctrl-C ends quietly with 130; a reader that goes away (`| head -1`) quietly with 141, as a
    command killed by SIGPIPE does."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then a BrokenPipeError this handler sees
        return code
    except BrokenPipeError:  # before OSError, which it is
        _stdout_to_devnull()
        return 128 + signal.SIGPIPE
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file named on the command line: missing, a folder, not readable
        name = exc.filename if exc.filename is not None else ""
        print(f"error: {exc.strerror or exc}: {name!s}. Fix: check the path.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
