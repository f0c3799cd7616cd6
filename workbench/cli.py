"""The `workbench` command: parses flags, calls one core function, prints. Errors are turned
into one readable line (and exit code 2) here and nowhere else."""

import argparse
import json
import sys

from workbench import models
from workbench.client import DEFAULT_SYSTEM_PROMPT
from workbench.errors import WorkbenchError
from workbench.memory import DEFAULT_VLLM_VERSION


def _port(text: str) -> int:
    value = _int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port; use 1-65535")
    return value


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a whole number of at least 1")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _engine_flags(p: argparse.ArgumentParser) -> None:
    """vLLM's serve flags, in vLLM's own names (workbench/vllm_flags.py), and the engine's own."""
    p.add_argument("--model", default=models.BUNDLED_MODEL,
                   help=f"model name or folder with config.json (default: {models.BUNDLED_MODEL})")
    p.add_argument("--port", type=_port, default=None, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--max-model-len", type=_positive, default=4096)
    p.add_argument("--dtype", default=None, help="auto, bfloat16, float16 ...")
    p.add_argument("--gpu-memory-utilization", type=float, default=None, help="GPU only")
    p.add_argument("--kv-cache-gib", type=int, default=None, help="CPU only: VLLM_CPU_KVCACHE_SPACE (whole GiB)")
    p.add_argument("--kv-cache-dtype", default=None, help="auto, fp8, ...")
    p.add_argument("--quantization", default=None, help="ignored when the checkpoint declares its own")
    _parallel_flags(p, "GPU only: ")
    p.add_argument("--distributed-executor-backend", choices=["mp", "ray"], default=None,
                   help="GPU only: mp on one machine, ray across a Ray cluster (start it first)")
    p.add_argument("--max-num-seqs", type=_positive, default=None)
    p.add_argument("--max-num-batched-tokens", type=_positive, default=None)
    p.add_argument("--enable-tools", "--enable-auto-tool-choice", dest="enable_tools", action="store_true",
                   help="--enable-auto-tool-choice with the tool parser for the model's family (hermes for Qwen)")
    p.add_argument("--tool-call-parser", default=None, help="a parser of the installed vLLM (default: the family's)")
    p.add_argument("--enable-reasoning", action="store_true", help="--reasoning-parser qwen3 (Qwen3 only)")
    p.add_argument("--reasoning-parser", default=None, help="a parser of the installed vLLM (default: the family's)")
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--device", choices=["cpu", "gpu"], default=None,
                   help="which vLLM build runs it (default: this machine's); with --print-command, the one to print for")
    p.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for /health")
    p.add_argument("--print-command", action="store_true",
                   help="print the exact command this would run, and start nothing")


def _parallel_flags(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument("--tensor-parallel-size", "--tp", dest="tensor_parallel_size", type=_positive, default=1,
                   help=f"{prefix}GPUs per weight split")
    p.add_argument("--pipeline-parallel-size", "--pp", dest="pipeline_parallel_size", type=_positive, default=1,
                   help=f"{prefix}layer stages (GPUs or nodes)")


def engine_config_from_args(args) -> "EngineConfig":
    from workbench.engine import EngineConfig

    return EngineConfig(
        model=args.model, host=args.host, port=args.port, max_model_len=args.max_model_len, dtype=args.dtype,
        gpu_memory_utilization=args.gpu_memory_utilization, cpu_kv_cache_gib=args.kv_cache_gib,
        kv_cache_dtype=args.kv_cache_dtype or "auto", quantization=args.quantization,
        tensor_parallel_size=args.tensor_parallel_size, pipeline_parallel_size=args.pipeline_parallel_size,
        distributed_executor_backend=args.distributed_executor_backend, max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens, enable_tools=args.enable_tools,
        tool_call_parser=args.tool_call_parser, enable_reasoning=args.enable_reasoning,
        reasoning_parser=args.reasoning_parser, enforce_eager=args.enforce_eager, device=args.device,
        startup_timeout_s=args.startup_timeout,
    )


def _print_command(config) -> int:
    """`--print-command`: the line a start would run now, checked as a start checks it; nothing starts."""
    from workbench.engine import check_parsers

    check_parsers(config)
    print(config.resolve().command())
    return 0


def cmd_serve(args) -> int:
    import time

    from workbench.engine import Engine
    from workbench.processes import stop_on_signals

    config = engine_config_from_args(args)
    if args.print_command:
        return _print_command(config)
    stop_on_signals()
    engine = Engine(config)
    print(f"starting vLLM on {args.model} (the first start compiles the model; this takes a minute) ...",
          flush=True)
    try:
        report = engine.start()
        print(f"serving {models.served_name(args.model)} at {engine.base_url}")
        print(f"log: {engine.log_path}")
        print(report.to_markdown())
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


def _url(args) -> str:
    from workbench import settings

    url = args.url or settings.engine_url()
    if not url:
        raise WorkbenchError("no engine URL: pass --url http://127.0.0.1:PORT (printed by `workbench serve`) "
                             "or set WORKBENCH_URL.")
    return url


def cmd_chat(args) -> int:
    from workbench.client import Client

    client = Client(_url(args), model=args.model)
    params = {"temperature": args.temperature, "max_tokens": args.max_tokens, "system": args.system or None}
    if args.json:
        print(json.dumps(client.chat(args.question, **params).as_dict(), indent=2))
        return 0
    result = None
    for event in client.chat_stream(args.question, **params):
        if event.kind == "content":
            print(event.text, end="", flush=True)
        result = event.result or result
    rate = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "n/a tok/s"
    ttft = f"{result.ttft_s * 1000:.0f} ms" if result.ttft_s is not None else "n/a"
    print(f"\n\nTTFT {ttft} · {result.usage.completion_tokens} tokens · {rate}")
    return 0


def cmd_models(args) -> int:
    from workbench.client import Client

    for name in Client(_url(args)).models():
        print(name)
    return 0


def cmd_prepare_model(args) -> int:
    import time

    start = time.perf_counter()
    path = models.prepare_bundled_model(force=args.force)
    print(f"{models.BUNDLED_MODEL}: {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_doctor(args) -> int:
    from workbench.doctor import run_checks

    checks = run_checks()
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        for check in checks:
            mark = "ok " if check.ok else "!! "
            print(f"{mark}{check.name:<16} {check.value}")
            if not check.ok and check.fix:
                print(f"    fix: {check.fix}")
    return 0 if all(c.ok for c in checks) else 1


def cmd_compare(args) -> int:
    from workbench import hardware, memory
    from workbench.client import Client

    served = Client(args.compare_url).served_cache()
    if not served.get("root"):
        raise WorkbenchError(f"the server at {args.compare_url} does not say which folder it serves.")
    spec = models.find_model(served["root"])
    gpu_plan = None
    if args.gpu_given:
        settings = memory.ServeSettings(max_model_len=served["max_model_len"], kv_cache_dtype=served["cache_dtype"],
                                        gpu_memory_utilization=served["gpu_memory_utilization"],
                                        vllm_version=args.vllm_version or DEFAULT_VLLM_VERSION)
        gpu_plan = memory.plan(spec, hardware.find_gpu(args.gpu, args.gpu_total_gib), args.quant, settings,
                               args.group_size, args.weights_gib)
    rows = memory.compare_with_served(spec, served, gpu_plan)
    if args.json:
        print(json.dumps({"served": served, "rows": rows}, indent=2))
    else:
        print(f"{served['model']} at {args.compare_url} ({served['root']})")
        print(f"{'fact':<20} {'planned':>12} {'reported':>12}  match")
        for r in rows:
            mark = "" if r["match"] is None else ("yes" if r["match"] else "NO")
            print(f"{r['fact']:<20} {r['planned']!s:>12} {'' if r['reported'] is None else r['reported']!s:>12}  {mark}")
    return 0 if all(r["match"] is not False for r in rows) else 1


def cmd_plan(args) -> int:
    from workbench import hardware, memory

    if args.compare_url:
        return cmd_compare(args)
    spec = models.find_model(args.model)
    if args.calibrate_from:
        return _plan_calibrated(spec, args)
    gpu = hardware.find_gpu(args.gpu, args.gpu_total_gib, args.bandwidth_gbs)
    settings = memory.ServeSettings(
        max_model_len=args.max_model_len, gpu_memory_utilization=args.gpu_memory_utilization,
        kv_cache_dtype=args.kv_cache_dtype, tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        max_num_batched_tokens=args.max_num_batched_tokens, max_num_seqs=args.max_num_seqs,
        vllm_version=args.vllm_version or DEFAULT_VLLM_VERSION,
    )
    if args.parallel:
        return _plan_parallel(spec, gpu, args, settings)
    result = memory.plan(spec, gpu, args.quant, settings, args.group_size, args.weights_gib)
    return _print_plan(result, args)


def _print_plan(result, args, extra: dict | None = None) -> int:
    from workbench import memory

    flags = memory.flag_claims(result, args.max_model_len, args.claim_tok_s, args.claim_ttft_s)
    if args.json:
        print(json.dumps(dict(result.as_dict(), claim_flags=flags, **(extra or {})), indent=2))
        return 0
    d = result.as_dict()
    print(f"{result.model} · {result.quant} on {result.gpu} · max_model_len {args.max_model_len:,} (per GPU)")
    for key in ("requested_gib", "weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib"):
        print(f"  {key:<18} {d[key]:>8.2f}")
    print(f"  {'kv_bytes_per_token':<18} {result.kv_bytes_per_token:>8,}")
    print(f"  {'kv_cache_tokens':<18} {result.kv_cache_tokens:>8,}")
    print(f"  {'max_concurrency':<18} {result.max_concurrency:>8.2f}")
    r = result.kv_cache_gib_range
    print(f"  kv_cache_gib range {r.pessimistic:.2f} (pessimistic) to {r.optimistic:.2f} (optimistic)")
    print(f"  {result.roofline(args.max_model_len)}")
    print(("FITS: " if result.fits else "DOES NOT FIT: ") + result.reason)
    for line in result.warnings:
        print(f"warning: {line}")
    for line in result.suggestions:
        print(f"suggestion: {line}")
    for line in flags:
        print(f"IMPOSSIBLE CLAIM: {line}")
    print("command: " + result.flags.command())
    print("checkpoint: " + result.checkpoint_note)
    if extra:
        _print_calibration(extra["calibration"])
    return 0


def _print_calibration(cal: dict) -> None:
    facts = {k: v for k, v in cal["facts"].items() if v is not None}
    print("calibrated from the log: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print("  fitted: " + ", ".join(f"{k} {v}" for k, v in cal["fitted_terms"].items()))
    if cal["residual"]:
        print("  on the log itself: " + ", ".join(f"{k} {v:+}" for k, v in cal["residual"].items()))
    for note in cal["notes"]:
        print(f"  note: {note}")


def _plan_calibrated(spec, args) -> int:
    """`workbench plan --calibrate-from LOG`: fit the overheads to the user's own start-up log, then plan."""
    from workbench import calibrate, hardware, memory

    facts = calibrate.read_log_file(args.calibrate_from)
    if facts.device == "cpu":
        out = calibrate.cpu_plan_from_log(spec, facts, args.max_model_len, args.kv_cache_dtype, args.kv_space_gib)
        if args.json:
            print(json.dumps(out, indent=2))
            return 0
        print(f"{spec.name} on the CPU build · VLLM_CPU_KVCACHE_SPACE={out['kv_cache_gib']:g} · max_model_len "
              f"{args.max_model_len:,}")
        print(f"  kv_cache_tokens {out['kv_cache_tokens']:,} ({out['kv_bytes_per_token']:,} B per token, blocks of "
              f"{memory.CPU_BLOCK_SIZE}); max concurrency {out['max_concurrency']:.2f}")
        _print_calibration(out["calibration"])
        return 0
    total = args.gpu_total_gib or facts.total_gib
    if args.gpu_given:
        gpu = hardware.find_gpu(args.gpu, total, args.bandwidth_gbs)
    else:  # no total either: fit() says which flag to add
        gpu = hardware.GpuSpec("the log's GPU", total, args.bandwidth_gbs or 0.0, 0.0, "?") if total else None
    settings = calibrate.as_logged(memory.ServeSettings(
        max_model_len=args.max_model_len, gpu_memory_utilization=args.gpu_memory_utilization,
        kv_cache_dtype=args.kv_cache_dtype, tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        max_num_batched_tokens=args.max_num_batched_tokens, max_num_seqs=args.max_num_seqs), facts, args.vllm_version)
    result, cal = calibrate.plan_from_log(spec, facts, gpu, args.quant, settings, args.group_size, args.weights_gib)
    return _print_plan(result, args, cal.json_fields())


def _plan_parallel(spec, gpu, args, settings) -> int:
    from workbench import memory

    sweep = memory.sweep_parallel(spec, gpu, args.quant, settings, args.group_size, args.gpus_per_node)
    if args.json:
        print(json.dumps(sweep, indent=2))
        return 0
    print(f"{spec.name} · {args.quant} on {gpu.name} · max_model_len {args.max_model_len:,} · "
          f"{args.gpus_per_node} GPUs per node (memory per GPU)")
    print(f"{'TP':>3} {'PP':>3} {'GPUs':>5} {'nodes':>5} {'weights GiB':>12} {'KV GiB':>8} {'KV tokens':>10} "
          f"{'requests':>9}  fits")
    for r in sweep["rows"]:
        print(f"{r['tp']:>3} {r['pp']:>3} {r['gpus']:>5} {r['nodes']:>5} {r['weights_gib_per_gpu']:>12.2f} "
              f"{r['kv_cache_gib_per_gpu']:>8.2f} {r['kv_cache_tokens']:>10,} {r['max_concurrency']:>9.2f}  "
              f"{'yes' if r['fits'] else 'no'}")
    print(sweep["verdict"])
    if sweep["choice"]:
        print("command: " + sweep["choice"]["command"])
    return 0 if sweep["choice"] else 1


def cmd_quantize(args) -> int:
    from tqdm import tqdm

    from workbench import quantize

    settings = quantize.QuantizeSettings(
        method=args.method, bits=args.bits, group_size=args.group_size, desc_act=args.desc_act, sym=not args.asym,
        damp_percent=args.damp, samples=args.samples, seq_len=args.seq_len,
    )
    text = quantize.read_texts(args.calibration) if args.calibration else None
    bars = []

    def show(progress):
        if not bars:
            bars.append(tqdm(total=progress.layers, unit="layer", disable=args.json,
                             desc=f"{args.method} int{args.bits} g{args.group_size}"))
        bars[0].n = progress.layer
        bars[0].refresh()

    try:
        result = quantize.quantize(args.model, args.out, settings, text, on_progress=show)
    except KeyboardInterrupt:
        print(f"\ncancelled; {args.out} was not written.", file=sys.stderr)
        return 130
    finally:
        for bar in bars:
            bar.close()
    summary = {"out": str(result.out), "seconds": round(result.seconds, 1), "source_bytes": result.source_bytes,
               "out_bytes": result.out_bytes, "settings": result.manifest["settings"]}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {result.out} in {result.seconds:.0f} s: {result.source_bytes / 1e6:.0f} MB -> "
              f"{result.out_bytes / 1e6:.0f} MB. Serve it: workbench serve --model {result.out}")
    return 0


def cmd_eval_ppl(args) -> int:
    from pathlib import Path

    from workbench import quantize
    from workbench.client import Client

    client = Client(_url(args), model=args.model)
    text = Path(args.text).read_text() if args.text else quantize.eval_text()
    result = quantize.perplexity(client, text)
    result["model"] = client.model
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{client.model}: perplexity {result['ppl']:.3f} over {result['tokens']:,} tokens")
    return 0


def cmd_docqa(args) -> int:
    from workbench import docqa, documents
    from workbench.client import Client

    document = documents.load(args.file)
    client = Client(_url(args))
    template = "question" if args.question is not None else args.template
    stream = (lambda text: print(text, end="", flush=True)) if not args.json else None
    answer = docqa.ask(client, document, template, args.question, on_text=stream)
    if args.json:
        out = answer.as_dict()
        out.update(document=document.name, chars=document.chars)
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print("\n")
    print(answer.to_markdown())
    ttft = f"{answer.ttft_s * 1000:.0f} ms" if answer.ttft_s is not None else "n/a"
    print(f"\n{document.name}: {document.chars:,} characters, strategy {answer.strategy}, "
          f"{answer.prompt_tokens:,} prompt tokens, TTFT {ttft}, {answer.total_s:.1f} s")
    return 0


def cmd_docqa_eval(args) -> int:
    from pathlib import Path

    from workbench import contracts, settings
    from workbench.client import Client

    folder = Path(args.folder) if args.folder else settings.cache_dir() / "docqa-eval"
    if not (folder / "facts.json").is_file():
        contracts.make_eval_set(folder, count=args.count)
    show = None if args.json else (lambda r: print(f"{r['document']:<22} {r['field']:<24} value "
                                                   f"{'ok ' if r['value_correct'] else 'no '} quote "
                                                   f"{'ok ' if r['quote_correct'] else 'no '} verified "
                                                   f"{'yes' if r['verified'] else 'no'}", flush=True))
    report = contracts.evaluate(Client(_url(args)), folder, tuple(args.formats), args.limit, on_row=show)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"\n{'set':<5} {'fields':>6} {'value acc.':>10} {'quote acc.':>10} {'verified':>9} {'supported':>9} "
          f"{'answer acc.':>11}")
    for key, s in report["summary"].items():
        print(f"{key:<5} {s['fields']:>6} {s['value_accuracy']:>10.0%} {s['quote_accuracy']:>10.0%} "
              f"{s['verified_share']:>9.0%} {s['supported_share']:>9.0%} {s['answer_accuracy']:>11.0%}")
    print(f"verified marks that were wrong: {report['verified_marks_wrong']}")
    return 0


def _tool_policy(args, audit_name: str):
    import time
    from pathlib import Path

    from workbench import settings, tools

    data = settings.cache_dir() / "tools"
    registry = tools.builtin_registry(data)
    if getattr(args, "tools_file", None):
        tools.load_tools_file(registry, args.tools_file)
    audit = tools.AuditLog(Path(args.audit) if getattr(args, "audit", None)
                           else data / f"{audit_name}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    confirm = (lambda name, arguments: True) if getattr(args, "confirm", "deny") == "allow" else None
    return tools.Policy(registry, audit, confirm=confirm)


def cmd_tools_run(args) -> int:
    from workbench import agent
    from workbench.client import Client

    policy = _tool_policy(args, "audit")
    show = None if args.json else (lambda s: print(f"[{s.status}] {s.tool}({json.dumps(s.arguments, ensure_ascii=False)})"
                                                   f" -> {s.reason if s.status != 'executed' else s.result}"))
    turn = agent.run_turn(Client(_url(args)), policy, args.message, args.mode, on_step=show,
                          tool_choice=args.tool_choice, few_shot=args.few_shot)
    if args.json:
        print(json.dumps(dict(turn.as_dict(), audit_log=str(policy.audit.path)), ensure_ascii=False, indent=2,
                         default=str))
    else:
        print(f"\n{turn.answer}\n\naudit log: {policy.audit.path}")
    return 0


def cmd_tools_eval(args) -> int:
    from workbench import toolseval
    from workbench.client import Client

    client = Client(_url(args))
    designs = [toolseval.parse_design(name) for name in args.designs]
    report = toolseval.compare(client, lambda name: _tool_policy(args, f"eval-{name}"), designs)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"{'design':<22} {'category':<12} {'cases':>5} {'name':>6} {'args':>6} {'exact':>6}")
    for design, r in report.items():
        for category, row in [*r["categories"].items(), *r["languages"].items(), ("overall", r["overall"])]:
            print(f"{design:<22} {category:<12} {row['cases']:>5} {row['name']:>6.0%} {row['arguments']:>6.0%} "
                  f"{row['exact']:>6.0%}")
    return 0


def _duration(what: str):
    def parse(text: str) -> float:
        from workbench.bench import parse_duration_ms

        try:
            return parse_duration_ms(text, what)
        except WorkbenchError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds (e.g. 2000)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 ms")
    return value


def _concurrency(text: str) -> list[int]:
    from workbench.bench import parse_concurrency

    try:
        return parse_concurrency(text)
    except WorkbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_bench(args) -> int:
    from pathlib import Path

    from workbench import bench

    workload = bench.Workload(args.num_prompts, args.input_len, args.output_len, args.dataset, args.seed)
    report = bench.run(_url(args), workload, concurrency=args.concurrency, rate=args.request_rate,
                       burstiness=args.burstiness, slo=bench.SLO(args.slo_ttft, args.slo_tpot), gpu=args.gpu,
                       ignore_eos=args.ignore_eos, progress=not args.json)
    if args.save:
        folder = Path(args.save)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bench.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        (folder / "bench.csv").write_text(bench.to_csv(report))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(bench.to_text(report))
    if args.save:
        print(f"saved: {Path(args.save) / 'bench.json'} and bench.csv")
    return 0


def cmd_tune(args) -> int:
    from workbench import bench, hardware, tune
    from workbench.engine import detect_device

    workload = bench.Workload(args.num_prompts, args.input_len, args.output_len)
    slo = bench.SLO(args.slo_ttft, args.slo_tpot)
    here = detect_device()
    gpu = hardware.find_gpu(args.gpu, args.gpu_total_gib) if args.gpu else None
    if gpu is None and here == "gpu":
        gpu = hardware.local_gpu_spec()  # this machine's card, to plan and benchmark on
    device = "gpu" if gpu else here
    if args.dry_run:
        proposals = tune.propose(models.find_model(args.model), workload, args.concurrency, device, gpu, args.quant)
        if args.json:
            print(json.dumps([p.as_dict() for p in proposals], ensure_ascii=False, indent=2))
        else:
            print(tune.proposals_text(proposals))
        return 0
    if gpu and here != "gpu":
        raise WorkbenchError(f"--gpu {args.gpu} plans for a GPU, but this machine has none to benchmark on. "
                             "Fix: add --dry-run to see the planner's candidates, or run it on that GPU.")
    report = tune.tune(args.model, workload, args.concurrency, slo, device, gpu, args.quant, args.max_candidates,
                       on_event=(lambda text: print(text, file=sys.stderr, flush=True)))
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else tune.to_text(report))
    return 0 if report["serve"] else 1


def cmd_ab_run(args) -> int:
    import tempfile
    from pathlib import Path

    from tqdm import tqdm

    from workbench import abtest, settings

    config = abtest.load_config(args.config)
    changes = {k: v for k, v in (("limit", args.limit), ("repeats", args.repeats), ("concurrency", args.concurrency))
               if v is not None}
    if changes:
        config = abtest.parse_config({**config.model_dump(by_alias=True, exclude_unset=True), **changes},
                                     config.base_dir, where=args.config)
    cache = None if args.no_cache else (abtest.ResultCache(args.cache) if args.cache else "default")
    with tqdm(unit="trial", disable=args.json, file=sys.stderr, desc=config.name) as bar:
        def show(done, total, trial):
            bar.total = total
            bar.update(1)

        report = abtest.run(config, args.url or settings.engine_url(), cache=cache, on_trial=show)
    out = Path(args.save) if args.save else Path(tempfile.mkdtemp(prefix="ab-"))
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.config).stem
    files = [str(report.write_json(out / f"{stem}.json")), str(report.write_csv(out / f"{stem}.csv"))]
    if args.json:
        print(json.dumps(dict(report.summary(), files=files), ensure_ascii=False, indent=2))
        return 0
    headers, rows = report.table()
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(f"\n{report.verdict}\n\ntrials: {files[1]}\nreport: {files[0]}")
    return 0


def cmd_ui(args) -> int:
    from workbench import settings
    from workbench.ui import app

    url = args.url or settings.engine_url()
    if args.print_command:
        if args.url:
            raise WorkbenchError(f"--print-command prints the command that starts an engine, and --url {args.url} "
                                 "attaches to one that runs already: nothing would start. Fix: drop one of them.")
        return _print_command(engine_config_from_args(args))
    app.launch(engine_config_from_args(args), url=url, log_path=settings.engine_log() if url else None,
               host=args.ui_host, port=args.ui_port, share=args.share, auth=args.auth or settings.ui_auth(),
               start_engine=not args.no_engine)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from workbench import agent, toolseval

    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="start vLLM in the foreground and print its report")
    _engine_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("chat", help="ask a running engine one question; prints the answer and TTFT")
    p.add_argument("question")
    p.add_argument("--url", default=None, help="engine URL (default: $WORKBENCH_URL)")
    p.add_argument("--model", default=None, help="default: the server's only model")
    p.add_argument("--system", default=DEFAULT_SYSTEM_PROMPT,
                   help=f"system prompt (default: {DEFAULT_SYSTEM_PROMPT!r}; '' for none)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=_positive, default=256)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("models", help="list the models a running engine serves")
    p.add_argument("--url", default=None)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("prepare-model", help="convert the bundled model once (a no-op afterwards)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_prepare_model)

    p = sub.add_parser("doctor", help="check Python, CPU/GPU, the vLLM build and the bundled model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("plan", help="plan GPU memory: weights, KV cache, concurrency, roofline")
    p.add_argument("--model", default="Qwen3-14B", help="catalog name or folder with config.json")
    p.add_argument("--gpu", default=None, help="catalog name, forgiving (default: RTX 3090)")
    p.add_argument("--compare-url", default=None, help="compare a running engine's KV cache with the plan")
    p.add_argument("--gpu-total-gib", type=float, default=None,
                   help="memory as CUDA reports it, if not the catalog's; with it any GPU name plans")
    p.add_argument("--bandwidth-gbs", type=float, default=None, help="memory bandwidth (GB/s), for a GPU not in the "
                   "catalog: gives the decode bound")
    p.add_argument("--quant", default="bf16")
    p.add_argument("--group-size", type=int, default=128)
    p.add_argument("--max-model-len", type=int, default=32_768)
    p.add_argument("--gpu-memory-utilization", type=float, default=None)
    p.add_argument("--kv-cache-dtype", default="auto")
    _parallel_flags(p)
    p.add_argument("--parallel", action="store_true", help="sweep TP × PP layouts, memory per GPU, and pick one")
    p.add_argument("--gpus-per-node", type=_positive, default=8, help="with --parallel: GPUs in one machine")
    p.add_argument("--max-num-batched-tokens", type=int, default=None)
    p.add_argument("--max-num-seqs", type=_positive, default=None,
                   help="default: vLLM's for the version and GPU (256; 1024 on 70 GiB or more, A100 excepted)")
    p.add_argument("--vllm-version", default=None, help=f"default: the log's with --calibrate-from, else "
                   f"{DEFAULT_VLLM_VERSION}")
    p.add_argument("--weights-gib", type=float, default=None, help="measured weights (vLLM's 'Model loading took')")
    p.add_argument("--calibrate-from", metavar="LOG", default=None,
                   help="a vLLM start-up log from this machine: fit the overheads to it, then plan these settings")
    p.add_argument("--kv-space-gib", type=float, default=None,
                   help="with a CPU-build log: the VLLM_CPU_KVCACHE_SPACE to plan for (default: the log's)")
    p.add_argument("--claim-tok-s", type=float, default=None, help="check a claimed decode speed at max_model_len")
    p.add_argument("--claim-ttft-s", type=float, default=None, help="check a claimed TTFT for a max_model_len prompt")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("quantize", help="GPTQ (or round-to-nearest) INT4/INT8 checkpoint that vLLM serves")
    p.add_argument("model", help=f"name or folder (e.g. {models.BUNDLED_MODEL})")
    p.add_argument("--out", required=True, help="new folder for the checkpoint")
    p.add_argument("--method", choices=["gptq", "rtn"], default="gptq")
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--desc-act", action="store_true", help="act-order")
    p.add_argument("--asym", action="store_true", help="asymmetric (default: symmetric)")
    p.add_argument("--damp", type=float, default=0.05, help="dampening, fraction of the Hessian diagonal mean")
    p.add_argument("--samples", type=int, default=32, help="calibration samples")
    p.add_argument("--seq-len", type=int, default=512, help="tokens per calibration sample")
    p.add_argument("--calibration", nargs="*", help=".txt or .jsonl files (default: Python's pydoc topics)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("eval-ppl", help="perplexity of a served model on a text (via prompt_logprobs)")
    p.add_argument("--url", default=None)
    p.add_argument("--model", default=None, help="default: the server's only model")
    p.add_argument("--text", default=None, help="a text file (default: a held-out slice of Python's docs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval_ppl)

    p = sub.add_parser("docqa", help="ask about a document (PDF, DOCX, TXT, MD, HTML), with verified quotes")
    p.add_argument("file")
    p.add_argument("--template", choices=["contract", "minutes"], default="contract")
    p.add_argument("--question", default=None, help="a free question instead of a template")
    p.add_argument("--url", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docqa)

    p = sub.add_parser("docqa-eval", help="field accuracy and verified quotes on the generated contract set")
    p.add_argument("--url", default=None)
    p.add_argument("--folder", default=None, help="default: the cache's docqa-eval (generated if missing)")
    p.add_argument("--count", type=_positive, default=10)
    p.add_argument("--limit", type=_positive, default=None, help="only the first N contracts")
    p.add_argument("--formats", nargs="+", choices=["pdf", "docx"], default=["pdf"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docqa_eval)

    p = sub.add_parser("tools-run", help="one function-calling turn through the tool policy, audited")
    p.add_argument("--message", required=True)
    p.add_argument("--tools-file", default=None, help="JSON list of {name, description, parameters, result}")
    p.add_argument("--mode", choices=agent.MODES, default=agent.DEFAULT_MODE)
    p.add_argument("--few-shot", action=argparse.BooleanOptionalAction, default=agent.DEFAULT_FEW_SHOT,
                   help="worked examples in the system prompt")
    p.add_argument("--tool-choice", default="auto",
                   help="auto (the model decides), required (it must call a tool first) or a tool's name")
    p.add_argument("--confirm", choices=["allow", "deny"], default="deny", help="answer for sensitive tools")
    p.add_argument("--audit", default=None, help="audit log path (default: under the cache)")
    p.add_argument("--url", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tools_run)

    p = sub.add_parser("bench", help="serving benchmark: TTFT, TPOT, ITL, latency, throughput and goodput per load")
    p.add_argument("--url", default=None, help="engine URL (default: $WORKBENCH_URL)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=_concurrency, default=[1], help="levels, e.g. 1,2,4 (default 1)")
    load.add_argument("--request-rate", type=float, default=None, help="requests per second (Poisson arrivals)")
    p.add_argument("--burstiness", type=float, default=1.0, help="with --request-rate: 1 is Poisson, <1 burstier")
    p.add_argument("--num-prompts", type=_positive, default=16)
    p.add_argument("--input-len", type=_positive, default=128, help="prompt tokens (at most, for docqa and ab)")
    p.add_argument("--output-len", type=_positive, default=64)
    p.add_argument("--dataset", choices=["random", "docqa", "ab"], default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slo-ttft", dest="slo_ttft", type=_duration("--slo-ttft"), default=None,
                   help="TTFT objective with its unit, e.g. 2s")
    p.add_argument("--slo-ttft-ms", dest="slo_ttft", type=_milliseconds, help="the same, in milliseconds")
    p.add_argument("--slo-tpot", dest="slo_tpot", type=_duration("--slo-tpot"), default=None,
                   help="TPOT objective with its unit, e.g. 100ms")
    p.add_argument("--slo-tpot-ms", dest="slo_tpot", type=_milliseconds, help="the same, in milliseconds")
    p.add_argument("--gpu", default=None, help="the server's GPU (catalog name), for the roofline bound")
    p.add_argument("--ignore-eos", action=argparse.BooleanOptionalAction, default=True,
                   help="generate exactly --output-len tokens (vLLM)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save", default=None, help="folder for bench.json and bench.csv")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("tune", help="the engine flags that serve a workload best: planner-pruned candidates, "
                                    "each started and benchmarked, ranked by goodput")
    p.add_argument("--model", default=models.BUNDLED_MODEL, help="model name or folder")
    p.add_argument("--concurrency", type=_positive, default=4, help="requests in flight (default 4)")
    p.add_argument("--num-prompts", type=_positive, default=16)
    p.add_argument("--input-len", type=_positive, default=128)
    p.add_argument("--output-len", type=_positive, default=32)
    p.add_argument("--slo-ttft", dest="slo_ttft", type=_duration("--slo-ttft"), default=None, help="e.g. 2s")
    p.add_argument("--slo-ttft-ms", dest="slo_ttft", type=_milliseconds, help="the same, in milliseconds")
    p.add_argument("--slo-tpot", dest="slo_tpot", type=_duration("--slo-tpot"), default=None, help="e.g. 100ms")
    p.add_argument("--slo-tpot-ms", dest="slo_tpot", type=_milliseconds, help="the same, in milliseconds")
    p.add_argument("--gpu", default=None, help="plan for this GPU (catalog name) instead of this machine")
    p.add_argument("--gpu-total-gib", type=float, default=None, help="with --gpu: a card not in the catalog")
    p.add_argument("--quant", default="bf16", help="weights format, for the GPU plan (e.g. gptq-int4)")
    p.add_argument("--max-candidates", type=_positive, default=None, help="benchmark at most this many")
    p.add_argument("--dry-run", action="store_true", help="only propose and prune; start no engine")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("tools-eval", help="BFCL-style scores of tool calls, per category and mode")
    p.add_argument("--designs", nargs="+", choices=toolseval.DESIGN_NAMES,
                   default=[toolseval.design_name(*d) for d in toolseval.DESIGNS],
                   help="a mode, optionally with +few-shot")
    p.add_argument("--url", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tools_eval)

    p = sub.add_parser("ab", help="prompt A/B tests with statistics (see examples/ab_system_prompts.yaml)")
    ab = p.add_subparsers(dest="ab_command", required=True)
    p = ab.add_parser("run", help="run a config's variants over its dataset; prints pass rates and a verdict")
    p.add_argument("config", help="YAML config (variants, dataset, assertions)")
    p.add_argument("--url", default=None, help="engine URL (default: $WORKBENCH_URL)")
    p.add_argument("--limit", type=_positive, default=None, help="only the first N items")
    p.add_argument("--repeats", type=_positive, default=None, help="override the config's repeats")
    p.add_argument("--concurrency", type=_positive, default=None, help="override the config's concurrency")
    p.add_argument("--cache", default=None, help="answer cache file (default: under the workbench cache)")
    p.add_argument("--no-cache", action="store_true", help="ask again even when an answer is cached")
    p.add_argument("--save", default=None, help="folder for the trials CSV and the report JSON (default: a temp one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ab_run)

    p = sub.add_parser("ui", help="open the Gradio workbench (starts the engine unless --url or --no-engine)")
    _engine_flags(p)
    p.add_argument("--url", default=None, help="attach to a running engine instead of starting one")
    p.add_argument("--ui-host", default="127.0.0.1")
    p.add_argument("--ui-port", type=_port, default=7860)
    p.add_argument("--share", action="store_true", help="a public Gradio link (needs --auth)")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help="a login for the app (default: $WORKBENCH_AUTH); needed beyond 127.0.0.1 and with --share")
    p.add_argument("--no-engine", action="store_true",
                   help="serve the app without starting the engine (Plan and the read-only parts; Start is on each tab)")
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Bad flags are argparse's (usage and exit 2). Everything the core refuses arrives here as a
    WorkbenchError and is printed once, as `error: ...` with the fix, exit 2; a path that cannot be
    read likewise. Ctrl-C ends quietly with 130."""
    args = build_parser().parse_args(argv)
    if args.command == "plan":
        args.gpu_given = args.gpu is not None
        args.gpu = args.gpu or "RTX 3090"
    try:
        return args.func(args)
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
