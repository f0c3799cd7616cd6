"""Document QA tab: upload a document, see whether it fits, fill a template or ask a question,
and see every field with the quote it came from, checked against the document."""

import tempfile
from pathlib import Path

import gradio as gr

from workbench import context, plots, reference
from workbench.serving.thinking import THINKING_SWITCH
from workbench.tasks import docqa, documents
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, shows_errors
from workbench.ui.jobs import relay, stream_pieces
from workbench.ui.notice import build_engine_notice

_HEADERS = ["field", "answer", "quote", "verified", "supported", "page"]


def build_docqa_tab(ctx: AppContext) -> None:
    with gr.Tab("Document QA"):
        build_engine_notice(ctx, "counts the document's tokens and asks the model about it")
        gr.Markdown(
            "Upload a PDF, DOCX, TXT, Markdown or HTML file. Every field shows the sentence it came from. "
            "**verified** ✅: that sentence is in the document. **supported** ✅: every number, amount, date "
            "and company name in the model's answer is in that sentence; ⚠️ otherwise, and then the "
            "answer shown is the sentence itself; ➖: the answer holds no figure or name to check."
        )
        document = gr.State(None)
        with gr.Row():
            upload = gr.File(label="Document", file_types=[".pdf", ".docx", ".txt", ".md", ".html", ".htm"])
            info = gr.Markdown("_no document yet_", elem_id="docqa-info")
        with gr.Row():
            template = gr.Radio(["contract", "minutes", "question"], value="contract", label="Template")
            question = gr.Textbox(label="Question (for 'question')", placeholder="What is the total amount?")
            thinking = gr.Radio(
                list(THINKING_SWITCH),
                value="default",
                label="Thinking",
                info="default: on for a free answer, off for the fields' quotes and values",
            )
            ask = gr.Button("Ask", variant="primary")
        answer = gr.Textbox(label="Answer (streamed)", lines=6, interactive=False)
        table = gr.Dataframe(
            headers=_HEADERS,
            label="Fields",
            wrap=True,
            elem_id="docqa-fields",
            column_widths=["12%", "30%", "30%", "7%", "15%", "6%"],
        )
        timings = gr.Markdown("")
        with gr.Row():
            export_json = gr.File(label="Export JSON")
            export_md = gr.File(label="Export Markdown")

        @shows_errors
        def on_upload(file, current):
            if file is None:
                return current, "_no document yet_"
            doc = documents.load(file if isinstance(file, str) else file.name)
            fit = docqa.measure_fit(ctx.client(), doc, kv_cache_tokens=ctx.engine.report.kv_cache_tokens)
            return doc, (
                f"**{doc.name}** · {doc.format} · {len(doc.pages)} page(s) · {doc.chars:,} characters · {fit.explain()}"
            )

        @shows_errors
        def on_ask(doc, template, question, thinking_="default"):
            if doc is None:
                raise gr.Error("Upload a document first.")
            streamed = []

            def partial(piece):
                streamed.append(piece)
                return "".join(streamed), None, "", None, None

            result = yield from relay(
                stream_pieces(
                    docqa.ask, ctx.client(), doc, template, question or None, thinking=THINKING_SWITCH.get(thinking_)
                ),
                partial,
            )
            rows = [[f.name, f.answer, f.quote, *f.marks(), f.page] for f in result.fields]
            stats = result.timing_line()
            files = result.save(tempfile.mkdtemp(prefix="docqa-"), Path(doc.name).stem)
            yield result.text, rows, stats, str(files["json"]), str(files["md"])

        upload.change(on_upload, [upload, document], [document, info], api_name="docqa_upload")

        # -- how much of the context can I trust? (workbench context) --
        gr.Markdown(
            "### How much of the context can I trust?\nFacts (amounts, dates, parties, clause numbers) are "
            "planted in the uploaded document (or in a generated Chinese and English contract) at each depth "
            "and length, each with a near-duplicate distractor, and asked for as above. **found**: a verified "
            "quote and the right value; a value from the distractor is **wrong**. Beside it, the planner's "
            "memory answer for the served model."
        )
        with gr.Row():
            ctx_lengths = gr.Textbox(value="1024,2048,4096", label="Lengths (tokens)")
            ctx_depths = gr.Textbox(value="0,25,50,75,100", label="Depths (%)")
            ctx_target = gr.Number(value=0.95, label="Target recall (0-1]")
            ctx_gpu = gr.Textbox(value=reference.GPU, label="GPU for the memory plan")
            ctx_own = gr.Checkbox(value=False, label="Use the uploaded document")
            ctx_run = gr.Button("Map the context")
        ctx_headline = gr.Markdown("", elem_id="context-headline")
        ctx_plot = gr.Plot(label="Recall over depth × length")
        ctx_table = gr.Markdown("")
        ctx_json = gr.File(label="Export JSON")

        @shows_errors
        def on_context(file, own, lengths, depths, target, gpu):
            paths = ((file if isinstance(file, str) else file.name),) if own and file is not None else ()
            if own and not paths:
                raise gr.Error("Upload a document first, or untick 'Use the uploaded document'.")
            out = tempfile.mkdtemp(prefix="context-")
            request = context.ContextRequest(
                paths,
                context.parse_lengths(lengths),
                context.parse_depths(depths),
                target=float(target),
                gpu=gpu.strip() or None,
            )
            report = context.run(request, ctx.client(), out)
            files = report.save(out, "context")
            first = report.maps[0]
            return (
                "\n\n".join(f"**{m['mode']}**: {m['headline']}" for m in report.maps),
                plots.recall_map(first),
                report.to_markdown(),
                str(files["json"]),
            )

        ctx_run.click(
            on_context,
            [upload, ctx_own, ctx_lengths, ctx_depths, ctx_target, ctx_gpu],
            [ctx_headline, ctx_plot, ctx_table, ctx_json],
            api_name="context_map",
            **HEAVY,
        )
        ask.click(
            on_ask,
            [document, template, question, thinking],
            [answer, table, timings, export_json, export_md],
            api_name="docqa_ask",
            **HEAVY,
        )
