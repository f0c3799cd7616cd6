"""Plan tab: the planner's inputs, a stacked bar of the GPU's memory, the concurrency-vs-context
curve and the `vllm serve` command. The numbers are the CLI's: both call memory.plan."""

import gradio as gr

from workbench import calibrate, hardware, memory, models, plots
from workbench.ui.handlers import filled, shows_errors

_LENGTHS = [2048, 4096, 8192, 16384, 24576, 32768, 40960, 65536, 131072]


def run_plan(model, gpu_name, quant, group_size, max_model_len, gmu, kv_dtype, tp, pp, batched, num_seqs,
             version, weights_gib, gpu_total_gib=None, log_text="", log_file=None):
    """One call to the planner, formatted for the tab. A pasted or uploaded start-up log calibrates it
    (workbench.calibrate), as `workbench plan --calibrate-from LOG` does."""
    spec = models.find_model(model)
    max_model_len = int(filled(max_model_len, 32768))
    facts = _log_facts(log_text, log_file)
    if facts is not None and facts.device == "cpu":
        return _cpu_plan(spec, facts, max_model_len, kv_dtype)
    total = float(gpu_total_gib) if gpu_total_gib else (facts.total_gib if facts else None)
    gpu = hardware.find_gpu(gpu_name, total)
    settings = memory.ServeSettings(
        max_model_len=max_model_len, gpu_memory_utilization=float(gmu) if gmu else None,
        kv_cache_dtype=kv_dtype, tensor_parallel_size=int(filled(tp, 1)), pipeline_parallel_size=int(filled(pp, 1)),
        max_num_batched_tokens=int(batched) if batched else None, max_num_seqs=int(num_seqs) if num_seqs else None,
        vllm_version=version or memory.DEFAULT_VLLM_VERSION,
    )
    weights = float(weights_gib) if weights_gib else None
    group_size = int(filled(group_size, 128))
    limit = spec.max_position_embeddings or max(_LENGTHS)
    lengths = [n for n in _LENGTHS if n <= limit]
    if facts is None:
        plan, extra = memory.plan(spec, gpu, quant, settings, group_size, weights), {}
        rows = memory.sweep_context(spec, gpu, quant, settings, lengths, group_size, weights)
    else:
        settings = calibrate.as_logged(settings, facts, version or None)
        plan, cal = calibrate.plan_from_log(spec, facts, gpu, quant, settings, group_size, weights)
        extra = cal.json_fields()
        rows = memory.sweep_context(spec, gpu, quant, settings, lengths, plan_at=lambda s: calibrate.gpu_plan(
            spec, gpu, quant, s, cal, group_size, weights))
    summary = plan.to_markdown() + (_calibration_markdown(extra["calibration"]) if extra else "")
    return summary, plots.memory_bar(plan, gpu), plots.concurrency_curve(rows, spec.name, gpu.name), \
        plan.flags.command(), dict(plan.as_dict(), **extra)


def _log_facts(log_text: str, log_file) -> "calibrate.LogFacts | None":
    if log_file:
        return calibrate.read_log_file(log_file if isinstance(log_file, str) else log_file.name, "the uploaded log")
    if log_text and log_text.strip():
        return calibrate.read_log(log_text, "the pasted log")
    return None


def _cpu_plan(spec, facts, max_model_len: int, kv_dtype: str):
    """A CPU-build log: the KV cache is the space the user sets, so the plan is its token count."""
    out = calibrate.cpu_plan_from_log(spec, facts, max_model_len, kv_dtype)
    summary = (f"### {'✅ fits' if out['fits'] else '❌ does not fit'}: {spec.name} on the CPU build\n"
               f"VLLM_CPU_KVCACHE_SPACE={facts.kv_cache_gib:g} GiB holds **{out['kv_cache_tokens']:,}** tokens "
               f"({out['kv_bytes_per_token']:,} B each, blocks of {memory.CPU_BLOCK_SIZE}); max concurrency at "
               f"{max_model_len:,}: **{out['max_concurrency']:.2f}**. Set another space with "
               "`workbench plan --calibrate-from LOG --kv-space-gib N`." + _calibration_markdown(out["calibration"]))
    return summary, None, None, out["command"], out


def _calibration_markdown(cal: dict) -> str:
    facts = ", ".join(f"{k} {v}" for k, v in cal["facts"].items() if v is not None)
    lines = ["", "#### Calibrated from your start-up log", f"- the log: {facts}",
             "- fitted: " + ", ".join(f"{k} {v}" for k, v in cal["fitted_terms"].items())]
    if cal["residual"]:
        lines.append("- on the log itself: " + ", ".join(f"{k} {v:+}" for k, v in cal["residual"].items()))
    lines += [f"- ⚠️ {note}" for note in cal["notes"]]
    return "\n".join(lines)


def build_plan_tab(ctx) -> None:
    with gr.Tab("Plan"):
        gr.Markdown("Will it fit, with which flags, for how many users? The planner follows vLLM's own arithmetic.")
        with gr.Row():
            model = gr.Dropdown(list(models.CATALOG), value="Qwen3-14B", label="Model (or a folder path)",
                                allow_custom_value=True)
            gpu = gr.Dropdown(list(hardware.GPU_CATALOG), value="RTX 3090", label="GPU (or type another card's name)",
                              allow_custom_value=True)
            quant = gr.Dropdown(list(memory.QUANT_FORMATS), value="gptq-int4", label="Weights")
            group_size = gr.Number(128, label="Group size", precision=0)
        with gr.Row():
            max_model_len = gr.Number(32768, label="max_model_len", precision=0)
            gmu = gr.Number(None, label="gpu_memory_utilization (0 or empty: vLLM default)")
            kv_dtype = gr.Dropdown(["auto", "fp8"], value="auto", label="KV cache dtype")
            tp = gr.Number(1, label="Tensor parallel", precision=0)
            pp = gr.Number(1, label="Pipeline parallel", precision=0)
        with gr.Row():
            batched = gr.Number(None, label="max_num_batched_tokens (0 or empty: default)", precision=0)
            num_seqs = gr.Number(None, label="max_num_seqs (0 or empty: default)", precision=0)
            version = gr.Textbox("", label="vLLM version", placeholder=f"empty: the log's, else {memory.DEFAULT_VLLM_VERSION}")
            weights_gib = gr.Number(None, label="Measured weights GiB (0 or empty: computed)")
            gpu_total = gr.Number(None, label="GPU memory GiB as CUDA reports it (for a card not in the list)")
        with gr.Accordion("Calibrate from your own vLLM start-up log", open=False):
            gr.Markdown("Paste the log of a `vllm serve` start on your machine, or upload it: the planner fits its "
                        "overheads to it and plans the settings above (another context, model or quantization).")
            with gr.Row():
                log_text = gr.Textbox(label="Start-up log (paste)", lines=6, max_lines=12, elem_id="plan-log")
                log_file = gr.File(label="…or upload it", file_types=[".log", ".txt"], type="filepath")
        go = gr.Button("Plan", variant="primary")
        summary = gr.Markdown()
        bar = gr.Plot(label="Memory on one GPU")
        curve = gr.Plot(label="Concurrency vs context")
        command = gr.Textbox(label="vllm serve command", buttons=["copy"], elem_id="plan-command")
        raw = gr.JSON(label="Plan as JSON (same as `workbench plan --json`)")

        @shows_errors
        def on_plan(*values):
            return run_plan(*values)

        inputs = [model, gpu, quant, group_size, max_model_len, gmu, kv_dtype, tp, pp, batched, num_seqs, version,
                  weights_gib, gpu_total, log_text, log_file]
        go.click(on_plan, inputs=inputs, outputs=[summary, bar, curve, command, raw], api_name="plan")
