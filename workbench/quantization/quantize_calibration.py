"""quantize_calibration.py gathers the text GPTQ calibrates on and cuts it into samples of a fixed number of
tokens. The default fits what the workbench's model is used for: chat-formatted conversations (through the
model's own chat template) in Chinese and English about contracts (docqa_dataset), tool calls with the demo
tools' schemas (demo_tools), and questions answered from Python's reference documentation (pydoc_data). Text can
also come from files (.txt, .jsonl) or from a dataset on the Hugging Face Hub, one of its JSON-lines or Parquet
files fetched with huggingface_hub. It knows nothing about GPTQModel.
"""

import gzip
import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

from workbench.errors import ConfigError
from workbench.tasks import demo_tools, docqa_dataset

DATA_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet")


def default_text() -> str:
    """Python's own reference documentation (pydoc_data), present in every CPython. Its end is quality.py's
    evaluation text, so the calibration mix takes topics from its first half only."""
    return "\n\n".join(topics[key] for key in sorted(topics))


# ---------------------------------------------------------------------------------------------
# The default mix: conversations rendered by the model's chat template
_QUESTIONS = {
    "zh": [
        ("合同总金额是多少？", "本合同总金额为人民币{amount:,}元。"),
        ("乙方需要在多少天内完成交付？", "乙方应在合同生效之日起{delivery_days}日内完成全部交付。"),
        ("逾期交付的违约金怎么计算？", "每逾期一日，按合同总金额的千分之{penalty_per_mille}支付违约金。"),
        ("提前多少天通知可以解除合同？", "任何一方提前{notice_days}日书面通知对方，可以解除本合同。"),
    ],
    "en": [
        ("What is the total contract amount?", "The total contract amount is USD {amount:,}."),
        ("Within how many days must Party B deliver?", "Party B must deliver within {delivery_days} days."),
        ("How are late-delivery damages computed?", "{penalty_per_mille} per mille of the total amount per day."),
        ("How much notice is needed to terminate?", "Either party may terminate with {notice_days} days' notice."),
    ],
}
_TOOL_ASKS = [
    ("get_weather", "杭州{date}的天气怎么样？", {"city": "Hangzhou"}),
    ("get_weather", "What's the weather in London on {date}?", {"city": "London"}),
    ("calculator", "帮我算一下 {a} 乘以 {b} 再减去 {c}。", None),
    ("calculator", "What is ({a} + {b}) / {c}?", None),
    (
        "query_sales",
        "Which region had the highest revenue last week?",
        {"sql": "SELECT region, SUM(revenue) AS r FROM sales GROUP BY region ORDER BY r DESC LIMIT 1"},
    ),
    ("current_time", "现在上海几点了？", {"timezone": "Asia/Shanghai"}),
]


def _tool_conversation(rng: random.Random, n: int) -> tuple[list[dict], dict]:
    name, ask, args = _TOOL_ASKS[n % len(_TOOL_ASKS)]
    date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    a, b, c = rng.randint(2, 999), rng.randint(2, 999), rng.randint(2, 99)
    question = ask.format(date=date, a=a, b=b, c=c)
    if name == "calculator":
        args = {"expression": f"{a} * {b} - {c}" if "乘以" in ask else f"({a} + {b}) / {c}"}
        result = demo_tools.safe_arithmetic(args["expression"])
    elif name == "get_weather":
        args = {**args, "date": date}
        result = demo_tools.demo_weather(args["city"], date)
    elif name == "current_time":
        result = f"2026-06-0{rng.randint(1, 9)}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+08:00"
    else:
        result = {"columns": ["region", "r"], "rows": [["East", round(rng.uniform(1e4, 9e4), 2)]]}
    call = {"type": "function", "function": {"name": name, "arguments": args}}
    answer = "根据工具返回的结果：" if any("\u4e00" <= ch <= "\u9fff" for ch in question) else "From the tool: "
    answer += json.dumps(result, ensure_ascii=False)
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "name": name, "content": json.dumps(result, ensure_ascii=False)},
        {"role": "assistant", "content": answer},
    ], call


def conversations(count: int, seed: int = 0) -> list[tuple[list[dict], dict | None]]:
    """`count` conversations, in turn a contract question (Chinese, then English), a tool call, and a question on
    Python's documentation. Each comes with the tool call it makes, if any."""
    rng = random.Random(seed)
    docs = [topics[k] for k in sorted(topics)[: len(topics) // 2]]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(count):
            kind = n % 4
            if kind in (0, 1):
                language = "zh" if kind == 0 else "en"
                facts = docqa_dataset.make_contract(
                    Path(tmp) / "c.txt", language, chars=rng.randint(2500, 4000), seed=rng.randrange(10**6)
                )
                text = (Path(tmp) / "c.txt").read_text(encoding="utf-8")
                question, answer = rng.choice(_QUESTIONS[language])
                out.append(
                    (
                        [
                            {"role": "user", "content": f"{text}\n\n{question}"},
                            {"role": "assistant", "content": answer.format(**facts.__dict__)},
                        ],
                        None,
                    )
                )
            elif kind == 2:
                out.append(_tool_conversation(rng, n // 4))
            else:
                doc = docs[rng.randrange(len(docs))]
                title = doc.strip().splitlines()[0][:80]
                out.append(
                    (
                        [
                            {"role": "user", "content": f"Explain this part of Python: {title}"},
                            {"role": "assistant", "content": doc[:3000]},
                        ],
                        None,
                    )
                )
    return out


def _tool_specs() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        return [t.openai_spec() for t in demo_tools.builtin_registry(tmp).tools]


def render(tokenizer, messages: list[dict], call: dict | None, tools: list[dict]) -> str:
    """One conversation through the model's chat template, the tools' schemas included. A template that drops tool
    calls (or has no tools) gets them written as Hermes-style <tool_call> text, as Qwen's models write them."""
    system = {"role": "system", "content": "You are a helpful assistant. 你是一个有帮助的助手。"}
    if getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template([system, *messages], tools=tools if call else None, tokenize=False)
            if call is None or call["function"]["name"] in text.split(messages[0]["content"], 1)[-1]:
                return text
        except Exception:  # a template that rejects tool messages: written out below
            pass
    plain = []
    for m in messages:
        if m.get("tool_calls"):
            body = "\n".join(
                f"<tool_call>\n{json.dumps(c['function'], ensure_ascii=False)}\n</tool_call>" for c in m["tool_calls"]
            )
            plain.append({"role": "assistant", "content": body})
        elif m["role"] == "tool":
            plain.append({"role": "user", "content": f"<tool_response>\n{m['content']}\n</tool_response>"})
        else:
            plain.append({"role": m["role"], "content": m["content"]})
    if call:
        system = {
            "role": "system",
            "content": system["content"]
            + "\n\n# Tools\n<tools>\n"
            + "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
            + "\n</tools>",
        }
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([system, *plain], tokenize=False)
    return "\n".join(f"{m['role']}: {m['content']}" for m in [system, *plain])


def chat_mix(tokenizer, tokens: int, seed: int = 0, max_tokens_each: int = 512) -> str:
    """Rendered conversations until they hold at least `tokens` tokens of `tokenizer`, each cut to its last
    `max_tokens_each` tokens (the sample length: the assistant's turn and any tool call stay), so that even a few
    samples take every kind in turn."""
    tools = _tool_specs()
    parts, count, n = [], 0, 0
    while count < tokens:
        batch = conversations(n + 8, seed)[n:]
        n += len(batch)
        for messages, call in batch:
            ids = tokenizer(render(tokenizer, messages, call, tools), add_special_tokens=False)["input_ids"]
            parts.append(tokenizer.decode(ids[-max_tokens_each:]))  # the end: the answer, the tool call
            count += min(len(ids), max_tokens_each)
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Files and Hub datasets
def _records(path: Path) -> list[dict]:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if name.removesuffix(".gz").endswith(".json") and text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_texts(paths: list[str | Path]) -> str:
    """.txt as is; .jsonl takes each line's "text" field."""
    parts = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"calibration file {str(path)!r} does not exist.")
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        parts.append(json.loads(line)["text"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise ConfigError(f'{path}:{n} is not a JSON object with a "text" field.') from None
        elif path.suffix in (".txt", ".md", ""):
            parts.append(path.read_text())
        else:
            raise ConfigError(f'calibration file {str(path)!r}: use .txt or .jsonl (lines of {{"text": ...}}).')
    return "\n\n".join(parts)


def dataset_text(path: str | Path, column: str = "text", max_chars: int = 4_000_000) -> str:
    """The `column` of a JSON(-lines, gzipped or not) or Parquet file's records, up to max_chars."""
    path = Path(path)
    records = _records(path)
    if records and column not in records[0]:
        raise ConfigError(
            f"{path.name} has no column {column!r}; its columns: {', '.join(records[0])}. "
            "Fix: name one with --calibration-column."
        )
    parts, size = [], 0
    for record in records:
        parts.append(str(record[column]))
        size += len(parts[-1])
        if size >= max_chars:
            break
    return "\n\n".join(parts)


def hub_dataset_text(spec: str, column: str = "text", max_chars: int = 4_000_000) -> str:
    """A Hub dataset given as `owner/name` or `owner/name:path/in/repo.json.gz`: one data file, fetched with
    huggingface_hub (no `datasets`). Without a path, the smallest .json(l)(.gz)/.parquet file of the repo; for a
    large repo name one (e.g. allenai/c4:en/c4-validation.00000-of-00008.json.gz), listing it takes long."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    repo, _, filename = spec.partition(":")
    try:
        if not filename:
            files = [
                f
                for f in HfApi().list_repo_tree(repo, repo_type="dataset", recursive=True)
                if getattr(f, "size", None) is not None and f.path.endswith(DATA_SUFFIXES)
            ]
            if not files:
                raise ConfigError(
                    f"dataset {repo!r} has no {', '.join(DATA_SUFFIXES)} file. Fix: name one as "
                    f"{repo}:PATH, or pass --calibration files."
                )
            filename = min(files, key=lambda f: f.size).path
        local = hf_hub_download(repo, filename, repo_type="dataset")
    except RepositoryNotFoundError:
        raise ConfigError(
            f"dataset {repo!r} is not on the Hub (or is private). Fix: check the id, or log in with `hf auth login`."
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise ConfigError(
            f"could not fetch {spec!r} from the Hub: {exc}. Fix: check the network, or download "
            "the file and pass it with --calibration."
        ) from None
    return dataset_text(local, column, max_chars)


# ---------------------------------------------------------------------------------------------
# Samples
@dataclass(frozen=True)
class Calibration:
    samples: list[str]
    heldout: str
    tokens_per_sample: int


def split_calibration(text: str, tokenizer, settings) -> Calibration:
    """`samples` pieces of `seq_len` tokens for calibration, then a held-out tail for perplexity."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []
    need = settings.samples * settings.seq_len
    heldout_tokens = max(settings.seq_len, int(need * settings.holdout_fraction / (1 - settings.holdout_fraction)))
    if len(ids) < need + heldout_tokens:
        raise ConfigError(
            f"the calibration text has {len(ids):,} tokens; {settings.samples} samples × {settings.seq_len} tokens "
            f"plus {heldout_tokens:,} held out need {need + heldout_tokens:,}. Fix: give more text, or lower "
            "--samples / --seq-len."
        )
    samples = [
        tokenizer.decode(ids[i * settings.seq_len : (i + 1) * settings.seq_len]) for i in range(settings.samples)
    ]
    heldout = tokenizer.decode(ids[need : need + heldout_tokens])
    return Calibration(samples, heldout, settings.seq_len)


def needed_tokens(settings) -> int:
    need = settings.samples * settings.seq_len
    return need + max(settings.seq_len, int(need * settings.holdout_fraction / (1 - settings.holdout_fraction)))
