"""A/B tests tab: two variants side by side, a dataset, checks, a run with progress, then the
verdict, pass rates with intervals, charts, the inputs × variants matrix and CSV/JSON exports.
Everything is built on `abtest` and `abreport`; the tab only turns form fields into a config."""

import tempfile
import time
from pathlib import Path

import gradio as gr
import yaml

from workbench import plots
from workbench.errors import WorkbenchError
from workbench.measurement import abconfig, abtest
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, filled, shows_errors
from workbench.ui.jobs import Job
from workbench.ui.notice import build_engine_notice

THINKING = {"template default": None, "on": True, "off": False}
FORM_FIELDS = {"name", "system", "template", "temperature", "max_tokens", "enable_thinking", "model", "url"}


def _example() -> dict:
    """The worked example (package data), as the form's starting values."""
    data = yaml.safe_load(abconfig.EXAMPLE.read_text(encoding="utf-8"))
    data["dataset"] = str(abconfig.EXAMPLE.parent / data["dataset"])
    return data


def _variant_fields(data: dict, defaults: dict) -> list:
    def pick(key, fallback):
        for source in (data, defaults):
            if source.get(key) is not None:
                return source[key]
        return fallback

    thinking = next(k for k, v in THINKING.items() if v is data.get("enable_thinking"))
    return [
        data.get("name", ""),
        data.get("system") or "",
        data.get("template") or "",
        pick("temperature", 0),
        pick("max_tokens", 64),
        thinking,
        data.get("model") or "",
        data.get("url") or "",
    ]


def _variant(fields: list) -> dict:
    name, system, template, temperature, max_tokens, thinking, model, url = fields
    out = {
        "name": name,
        "system": system or None,
        "template": template or None,
        "temperature": temperature,
        "max_tokens": None if filled(max_tokens, None) is None else int(max_tokens),
        "enable_thinking": THINKING[thinking],
        "model": model or None,
        "url": url or None,
    }
    return {k: v for k, v in out.items() if v is not None or k == "system"}


def _build_config(
    name, dataset, prompt, checks, repeats, concurrency, limit, judge, a: list, b: list
) -> abconfig.ABConfig:
    if not dataset:
        raise WorkbenchError("no dataset: upload a CSV, JSONL or JSON file (its columns fill the {placeholders}).")
    try:
        assertions = yaml.safe_load(checks or "") or []
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"the checks are not valid YAML: {exc}") from None
    data = {
        "name": name or "A/B test",
        "dataset": dataset,
        "prompt": prompt,
        "variants": [_variant(a), _variant(b)],
        "assert": assertions,
    }
    for key, value in (("repeats", repeats), ("concurrency", concurrency), ("limit", limit)):
        if filled(value, None) is not None:  # an emptied field (the browser's 0) keeps the config's default
            data[key] = int(value)
    if judge:
        data["judge"] = {}
    return abconfig.parse_config(data, where="the form")


def _results(report, stem: str) -> list:
    files = report.save(tempfile.mkdtemp(prefix="ab-"), stem)
    headers, rows = report.table()
    matrix_headers, matrix_rows = report.matrix()
    return [
        report.verdict.replace("\n", "\n\n"),
        gr.Dataframe(value=rows, headers=headers),
        plots.ab_chart(report),
        gr.Dataframe(value=matrix_rows, headers=matrix_headers),
        str(files["json"]),
        str(files["csv"]),
        yaml.safe_dump(
            report.config.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=False, allow_unicode=True
        ),
    ]


def build_ab_tab(ctx: AppContext) -> None:
    example = _example()
    defaults = example.get("defaults", {})
    with gr.Tab("A/B tests"):
        build_engine_notice(ctx, "sends every item to each variant")
        gr.Markdown(
            "Compare two prompt variants on the same items. A trial passes when every check passes; the "
            "verdict says whether the difference is real or how many more items it would take. Answers are "
            "cached, so a rerun (or a change of checks) sends no requests."
        )
        job_id = gr.State(None)
        with gr.Row():
            with gr.Column():
                dataset = gr.File(
                    label="Dataset (CSV, JSONL or JSON)",
                    file_types=[".csv", ".jsonl", ".json"],
                    value=example.get("dataset"),
                )
                preview = gr.Markdown("")
                config_file = gr.File(label="Or load a config (YAML)", file_types=[".yaml", ".yml"])
            with gr.Column():
                name = gr.Textbox(example.get("name", "A/B test"), label="Name")
                prompt = gr.Textbox(example.get("prompt", "{input}"), label="Prompt template ({column} placeholders)")
                checks = gr.Code(
                    yaml.safe_dump(example.get("assert", []), sort_keys=False, allow_unicode=True),
                    language="yaml",
                    label="Checks (YAML list: contains, equals, not_contains, regex, "
                    "json_schema, max_latency_s, max_tokens, python)",
                )
        columns = []
        with gr.Row():
            for label, data in zip(("A (baseline)", "B"), example["variants"][:2]):
                with gr.Column(variant="panel"):
                    gr.Markdown(f"**Variant {label}**")
                    values = _variant_fields(data, defaults)
                    columns.append(
                        [
                            gr.Textbox(values[0], label="Name"),
                            gr.Textbox(values[1], label="System prompt", lines=3),
                            gr.Textbox(values[2], label="Template (empty: the shared one)"),
                            gr.Number(values[3], label="Temperature", minimum=0, maximum=2),
                            gr.Number(values[4], label="Max tokens (empty: 64)", precision=0),
                            gr.Radio(list(THINKING), value=values[5], label="Thinking (Qwen3)"),
                            gr.Textbox(values[6], label="Model (empty: the engine's)"),
                            gr.Textbox(values[7], label="Endpoint URL (empty: the engine's)"),
                        ]
                    )
        with gr.Row():
            # No `minimum` on these: Gradio checks it before the handler, and a browser sends 0 for an empty field
            repeats = gr.Number(example.get("repeats", 1), label="Repeats per item (empty: 1)", precision=0)
            concurrency = gr.Number(example.get("concurrency", 4), label="Concurrent requests (empty: 4)", precision=0)
            limit = gr.Number(None, label="Only the first N items (empty: all)", precision=0)
            judge = gr.Checkbox(False, label="Also ask the engine to judge A vs B (both orders)")
            use_cache = gr.Checkbox(True, label="Reuse cached answers (off: ask again)")
        with gr.Row():
            run = gr.Button("Run", variant="primary")
            cancel = gr.Button("Cancel", variant="stop")
        status = gr.Markdown("")
        verdict = gr.Markdown("")
        table = gr.Dataframe(label="Pass rate per variant")
        chart = gr.Plot(label="Pass rate, latency and answer length")
        matrix = gr.Dataframe(label="Items × variants (✅ passed · ❌ failed · ⚠ no answer)", wrap=True)
        with gr.Row():
            export_json = gr.File(label="Report (JSON)")
            export_csv = gr.File(label="Trials (CSV)")
        config_yaml = gr.Code(language="yaml", label="This run as a config (`workbench ab run` takes it)")
        inputs = [
            name,
            dataset,
            prompt,
            checks,
            repeats,
            concurrency,
            limit,
            judge,
            *columns[0],
            *columns[1],
            use_cache,
        ]

        @shows_errors
        def on_dataset(file):
            if not file:
                return ""
            items = abconfig.load_items(
                abconfig.parse_config({"dataset": str(file), "variants": [{"name": "a"}, {"name": "b"}], "prompt": ""})
            )
            return f"{len(items)} items · columns: {', '.join(f'`{c}`' for c in items[0].vars)}"

        @shows_errors
        def on_config(file):
            if not file:
                return [gr.skip()] * len(inputs)
            config = abconfig.load_config(file)
            data = config.model_dump(by_alias=True, mode="json")
            source = abconfig.dataset_path(config)
            if source is None or not source.is_file():
                gr.Warning("The config's dataset is not beside the uploaded file; upload the dataset too.")
            dropped = abconfig.beyond(config, FORM_FIELDS, variants=2)
            if dropped:
                gr.Warning(
                    f"The form has no fields for {', '.join(dropped)}; run the config with "
                    "`workbench ab run` to use them."
                )
            variants = [_variant_fields(v, data["defaults"]) for v in data["variants"][:2]]
            checks_ = [a.model_dump(mode="json", exclude_defaults=True) for a in config.assertions]
            return [
                config.name,
                str(source) if source is not None and source.is_file() else gr.skip(),
                config.prompt,
                yaml.safe_dump(checks_, sort_keys=False, allow_unicode=True),
                config.repeats,
                config.concurrency,
                config.limit,
                config.judge is not None,
                *variants[0],
                *variants[1],
                True,
            ]

        @shows_errors
        def on_run(*values):
            config = _build_config(*values[:8], list(values[8:16]), list(values[16:24]))
            url = ctx.base_url()  # the engine must be up
            job = ctx.jobs.add(Job("abtest"))
            job.progress = (0, 0, 0)

            def show(done, total, trial):
                job.progress = (done, total, job.progress[2] + (not trial.ok))

            job.run(abtest.run, config, url, cache="default" if values[24] else None, on_trial=show, cancel=job.cancel)
            empty = [gr.skip()] * 7
            while job.running:
                done, total, failed = job.progress
                yield [job.id, f"running: {done}/{total or '…'} trials · {failed} without answer", *empty]
                time.sleep(0.5)
            if job.error and job.cancel.is_set():
                yield [job.id, job.error, *empty]  # "cancelled after N of M trials; ... running again resumes"
                return
            if job.error:
                raise gr.Error(job.error)
            report = job.result
            cached = sum(t.cached for t in report.trials)
            yield [
                job.id,
                f"done: {len(report.trials)} trials in {report.wall_s:.1f} s ({cached} from the cache)",
                *_results(report, Path(str(values[1])).stem),
            ]

        @shows_errors
        def on_cancel(job_id_):
            job = ctx.jobs.get(job_id_)
            if job is None or not job.running:
                return "nothing is running"
            job.cancel.set()
            return "cancelling after the requests in flight ..."

        dataset.change(on_dataset, [dataset], [preview], api_name="ab_dataset")
        config_file.upload(on_config, [config_file], inputs, api_name="ab_load_config")
        run.click(
            on_run,
            inputs,
            [job_id, status, verdict, table, chart, matrix, export_json, export_csv, config_yaml],
            api_name="ab_run",
            **HEAVY,
        )
        cancel.click(on_cancel, [job_id], [status], api_name="ab_cancel")
