"""Document QA tab: upload a document, see whether it fits, fill a template or ask a question,
and see every field with the quote it came from, checked against the document."""

import tempfile
from pathlib import Path

import gradio as gr

from workbench import docqa, documents
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, shows_errors
from workbench.ui.jobs import relay, stream_pieces
from workbench.ui.notice import build_engine_notice

_HEADERS = ["field", "answer", "quote", "verified", "supported", "page"]


def build_docqa_tab(ctx: AppContext) -> None:
    with gr.Tab("Document QA"):
        build_engine_notice(ctx, "counts the document's tokens and asks the model about it")
        gr.Markdown("Upload a PDF, DOCX, TXT, Markdown or HTML file. Every field shows the sentence it came from. "
                    "**verified** ✅: that sentence is in the document. **supported** ✅: every number, amount, date "
                    "and company name in the model's answer is in that sentence; ⚠️ otherwise, and then the "
                    "answer shown is the sentence itself; ➖: the answer holds no figure or name to check.")
        document = gr.State(None)
        with gr.Row():
            upload = gr.File(label="Document", file_types=[".pdf", ".docx", ".txt", ".md", ".html", ".htm"])
            info = gr.Markdown("_no document yet_", elem_id="docqa-info")
        with gr.Row():
            template = gr.Radio(["contract", "minutes", "question"], value="contract", label="Template")
            question = gr.Textbox(label="Question (for 'question')", placeholder="What is the total amount?")
            ask = gr.Button("Ask", variant="primary")
        answer = gr.Textbox(label="Answer (streamed)", lines=6, interactive=False)
        table = gr.Dataframe(headers=_HEADERS, label="Fields", wrap=True, elem_id="docqa-fields",
                             column_widths=["12%", "30%", "30%", "7%", "15%", "6%"])
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
            return doc, (f"**{doc.name}** · {doc.format} · {len(doc.pages)} page(s) · {doc.chars:,} characters · "
                         f"{fit.explain()}")

        @shows_errors
        def on_ask(doc, template, question):
            if doc is None:
                raise gr.Error("Upload a document first.")
            streamed = []

            def partial(piece):
                streamed.append(piece)
                return "".join(streamed), None, "", None, None

            result = yield from relay(stream_pieces(docqa.ask, ctx.client(), doc, template, question or None), partial)
            rows = [[f.name, f.answer, f.quote, *f.marks(), f.page] for f in result.fields]
            ttft = f"{result.ttft_s * 1000:.0f} ms" if result.ttft_s is not None else "n/a"
            rate = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "n/a"
            stats = (f"strategy **{result.strategy}** · {result.prompt_tokens:,} prompt tokens · TTFT {ttft} · {rate} · "
                     f"{result.total_s:.1f} s")
            files = result.save(tempfile.mkdtemp(prefix="docqa-"), Path(doc.name).stem)
            yield result.text, rows, stats, str(files["json"]), str(files["md"])

        upload.change(on_upload, [upload, document], [document, info], api_name="docqa_upload")
        ask.click(on_ask, [document, template, question], [answer, table, timings, export_json, export_md],
                  api_name="docqa_ask", **HEAVY)
