"""Compare tab: `workbench compare` from the browser. Candidates one per line (the first is the baseline; `engine`
is the engine this app runs), the tasks, the benchmark and the target GPU; progress per candidate and task while it
runs; then the one-line answers, the verdict per task, the figures, and the report as HTML, Markdown, JSON, CSV."""

import tempfile

import gradio as gr

from workbench import reference
from workbench.measurement import bench, compare, compare_request
from workbench.serving import hardware
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, filled, shows_errors
from workbench.ui.jobs import relay, stream_pieces

_ENGINE = "engine"
_STATES = {"downloading": "⬇️", "starting": "⏳", "done": "✅", "reused": "♻️", "failed": "❌", "cleaned": "🧹"}


def candidates_from(text: str, engine_url) -> tuple[compare_request.Candidate, ...]:
    """One candidate a line; `engine` (or `NAME=engine`) is the app's running engine, asked for only then."""
    out = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        candidate = compare_request.parse_candidate(line)
        if candidate.target == _ENGINE:
            name = candidate.name if candidate.name != _ENGINE else "bf16"
            candidate = compare_request.Candidate(name, engine_url(), candidate.flags)
        out.append(candidate)
    return tuple(out)


def progress_table(states: dict, steps: list[str]) -> str:
    """Markdown: a row per candidate, a column per step (engine, the tasks, bench)."""
    names = list(dict.fromkeys(name for name, _ in states))
    rows = ["| candidate | " + " | ".join(steps) + " |", "|---" * (len(steps) + 1) + "|"]
    for name in names:
        cells = [states.get((name, step), "") for step in steps]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def build_compare_tab(ctx: AppContext) -> None:
    with gr.Tab("Compare"):
        gr.Markdown(
            "**Is this quantized model good enough, on this GPU, for these tasks?** Each candidate runs the "
            "same items with the same seed; each task gets a verdict against the first candidate (the "
            "baseline) with exact paired statistics, then the benchmark and the memory plan. Candidates: one "
            "per line, `NAME=` optional, then a checkpoint folder (served here in turn, with vLLM flags after "
            "it), the bundled model's name, an http(s) URL, or `engine` (the engine this app runs). Finished "
            "results are kept: running again reuses them."
        )
        with gr.Row():
            candidates = gr.Textbox(
                "bf16=engine\n",
                lines=4,
                label="Candidates (first = baseline)",
                placeholder="bf16=engine\nint4=/path/to/gptq-checkpoint --enforce-eager",
                elem_id="compare-candidates",
            )
            with gr.Column():
                tasks = gr.CheckboxGroup(
                    list(compare_request.TASKS), value=list(compare_request.DEFAULT_TASKS), label="Tasks"
                )
                items = gr.Number(8, label="Items per task (empty: all)", precision=0)
        with gr.Row():
            workload = gr.Textbox("c=1", label="Benchmark (c=1,2 · rate=2 · none)")
            prompts = gr.Number(8, label="Prompts per level", precision=0)
            repeats = gr.Number(2, label="Runs per level", precision=0)
            gpu = gr.Dropdown(
                ["", *hardware.GPU_CATALOG],
                value=reference.GPU,
                label="Target GPU (empty: no plan)",
                allow_custom_value=True,
            )
            run = gr.Button("Compare", variant="primary")
        status = gr.Markdown("_no comparison yet_", elem_id="compare-status")
        answers = gr.Markdown(elem_id="compare-verdict")
        deltas = gr.Plot(label="Quality: difference from the baseline, with its interval")
        cdfs = gr.Plot(label="Latency CDFs")
        memory_bars = gr.Plot(label="Memory on the target GPU")
        files = gr.File(label="Report (HTML, Markdown, JSON, CSV)", file_count="multiple", elem_id="compare-files")

        @shows_errors
        def on_run(candidates_text, tasks_, items_, workload_, prompts_, repeats_, gpu_):
            load = compare_request.parse_workload(workload_ or "c=1")
            request = compare_request.CompareRequest(
                candidates=candidates_from(candidates_text, ctx.base_url),
                tasks=compare_request.parse_tasks(",".join(tasks_ or [])),
                settings=compare_request.TaskSettings(items=int(items_) if filled(items_, None) else None),
                workload=bench.Workload(num_prompts=int(filled(prompts_, 8)), output_len=32) if load else None,
                concurrency=load[0] if load else (1,),
                rate=load[1] if load else None,
                repeats=int(filled(repeats_, 2)),
                gpu=gpu_ or None,
            )
            steps = ["engine", *request.tasks] + (["bench"] if load else [])
            states = {(c.name, step): "" for c in request.candidates for step in steps}
            skip = [gr.skip()] * 5

            def show(event):
                states[(event.candidate, event.step)] = f"{_STATES.get(event.state, '')} {event.state}"
                return (f"running: {event}\n\n{progress_table(states, steps)}", *skip)

            yield f"checking the candidates …\n\n{progress_table(states, steps)}", *skip
            report = yield from relay(stream_pieces(lambda on_text: compare.run(request, on_event=on_text)), show)
            figures = {kind: fig for kind, (_, fig) in report.figures().items()}
            saved = report.save_report(tempfile.mkdtemp(prefix="compare-"))
            yield (
                f"done in {report.seconds:.0f} s\n\n{progress_table(states, steps)}",
                report.to_markdown().split("\n## Runs")[0],
                figures.get("quality"),
                figures.get("latency"),
                figures.get("memory"),
                [str(p) for p in saved.values()],
            )

        run.click(
            on_run,
            [candidates, tasks, items, workload, prompts, repeats, gpu],
            [status, answers, deltas, cdfs, memory_bars, files],
            api_name="compare_run",
            **HEAVY,
        )
