"""quality.py measures what a checkpoint costs, through the served engine: perplexity on held-out text (the
server scores every prompt token with prompt_logprobs), exact-match answers, and a report that serves each
checkpoint in turn (bf16, GPTQ, RTN) and sets them side by side. It quantizes nothing: quantize.py does.
"""

import json
import math
from pathlib import Path

from workbench.errors import ConfigError
from workbench.quantization.quantize import MANIFEST, default_text, folder_bytes
from workbench.serving import models
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig


def eval_text(chars: int = 12_000) -> str:
    """The end of Python's docs: text the default calibration (taken from the start) never sees."""
    return default_text()[-chars:]


def perplexity(client, text: str, chunk_chars: int = 2000) -> dict:
    """exp(mean negative log-likelihood) over the text, scored by the server (prompt_logprobs) in
    chunks that fit any context; the first token of each chunk has no log-probability."""
    if not text.strip():
        raise ConfigError("the text to score is empty.")
    total, count = 0.0, 0
    for start in range(0, len(text), chunk_chars):
        logprobs = [lp for lp in client.prompt_logprobs(text[start : start + chunk_chars]) if lp is not None]
        total += sum(logprobs)
        count += len(logprobs)
    return {"ppl": math.exp(-total / count), "tokens": count}


def eval_ppl(client: Client, text_path: str | Path | None = None) -> dict:
    """`workbench eval-ppl`: the served model's perplexity on a text file, or on the held-out slice of
    Python's docs; with the model's name."""
    text = Path(text_path).read_text() if text_path else eval_text()
    return {**perplexity(client, text), "model": client.model}


# Questions whose answers a working checkpoint of the bundled model gets right (checked on bf16).
EXACT_MATCH = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
]


def exact_match(client, system: str) -> list[dict]:
    rows = []
    for question, answer in EXACT_MATCH:
        text = client.chat(question, system=system, temperature=0, max_tokens=32).text
        rows.append({"question": question, "expected": answer, "answer": text, "ok": answer in text})
    return rows


def quality_report(
    checkpoints: dict[str, str | Path], text: str, system: str, engine_log_dir: str | Path | None = None
) -> list[dict]:
    """Serve each checkpoint in turn with the real engine and measure it: perplexity on `text`,
    the exact-match questions, size on disk. The first entry is the reference for the deltas."""
    rows = []
    for name, folder in checkpoints.items():
        folder = models.resolve_model(folder)
        log = Path(engine_log_dir) / f"{name}.log" if engine_log_dir else None
        with Engine(EngineConfig(model=str(folder), max_model_len=2048, enforce_eager=True), log_path=log) as engine:
            client = Client(engine.base_url)
            ppl = perplexity(client, text)
            answers = exact_match(client, system)
            kernel = engine.report.linear_kernel
        manifest_path = Path(folder) / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        rows.append(
            {
                "name": name,
                "ppl": round(ppl["ppl"], 3),
                "tokens": ppl["tokens"],
                "exact_match": f"{sum(a['ok'] for a in answers)}/{len(answers)}",
                "answers": answers,
                "size_mb": round(folder_bytes(folder) / 1e6, 1),
                "quantize_s": manifest.get("seconds"),
                "linear_kernel": kernel,
            }
        )
    base = rows[0]["ppl"]
    for row in rows:
        row["ppl_increase"] = round(row["ppl"] - base, 3)
    return rows
