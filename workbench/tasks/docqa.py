"""docqa.py answers questions about whole documents with the served model, and ties every field
to a verbatim quote that is checked against the document.

Strategy: the whole document in one prompt when it fits the engine's max_model_len; otherwise
map-reduce over sections. The document always comes first (in the system message) and the
question last, so a follow-up question shares the prefix and vLLM's prefix cache serves it.
Structured templates are filled with schema-guided decoding (response_format json_schema). Each field
carries two marks: `verified` (its quote is in the document) and `supported` (the numbers, amounts,
dates and company names in its value are in its quote; facts.py); an unsupported field's answer is its
quote. This module knows nothing about files (documents.py) or the UI.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from workbench.errors import ConfigError, WorkbenchError
from workbench.export import Exportable
from workbench.serving.reply import rate_text, ttft_text
from workbench.tasks import fact_check
from workbench.tasks.documents import Document, find_quote

SYSTEM = (
    "You answer questions about the document below, using only what it says. "
    "When asked for quotes, copy the sentence from the document exactly, character for character."
)

# Each field: what to ask for, and the words (English and Chinese) that find its candidate sentences.
TEMPLATES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "contract": {
        "parties": (
            "the parties to the contract (Party A and Party B)",
            ("party a (", "party b (", "(client)", "(provider)", "甲方（", "乙方（", "委托方", "服务方"),
        ),
        "services_and_delivery": (
            "the services and the delivery schedule",
            ("provide", "deliver", "services", "within", "服务", "交付", "日内", "完成"),
        ),
        "payment_terms": (
            "the payment terms and amounts",
            ("amount", "pay", "usd", "rmb", "advance", "balance", "金额", "支付", "付款", "预付款", "人民币"),
        ),
        "liability_for_breach": (
            "the liability for breach (penalties, liquidated damages)",
            ("liquidated damages", "delay", "breach", "per mille", "违约金", "逾期", "违约"),
        ),
        "termination_conditions": (
            "the termination conditions",
            ("terminate", "termination", "notice", "解除", "终止", "书面通知"),
        ),
    },
    "minutes": {
        "attendees": ("who attended", ("attend", "present", "participants", "出席", "参会", "与会")),
        "decisions": ("the decisions taken", ("decided", "agreed", "approved", "decision", "决定", "同意", "通过")),
        "action_items": (
            "the action items and their owners",
            ("action", "will", "owner", "responsible", "负责", "完成", "跟进"),
        ),
        "next_meeting": ("when the next meeting is", ("next meeting", "next", "下次会议", "下次")),
    },
}
CANDIDATES = 4
NOT_FOUND = "not found"


# Each field takes two short requests that share the cached document prefix. First the quote:
# schema-guided decoding picks it from the document's own sentences that mention the field (found by
# keywords), so it is verbatim by construction, and it is still checked like any other quote. Then
# the value: a short free answer written with that sentence in view (small models write free text
# far better than free strings inside JSON).
def quote_schema(candidates: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {"quote": {"enum": candidates}},
        "required": ["quote"],
        "additionalProperties": False,
    }


def split_sentences(text: str, min_chars: int = 40) -> list[str]:
    """Sentences, with line breaks inside a sentence joined (PDF extraction wraps lines anywhere).
    A break after a sentence end (. ; : 。 ； ： ! ?) is kept; pieces shorter than min_chars join the next."""
    joined = re.sub(r"(?<![.;:。；：!?！？])\s*\n\s*", lambda m: "" if _cjk_around(text, m) else " ", text)
    out, pending = [], ""
    for piece in re.split(r"\n|(?<=[。；！？])|(?<=[.;!?])\s+", joined):
        piece = (pending + (" " if pending and not _cjk(piece) else "") + piece.strip()).strip()
        if len(piece) < min_chars:
            pending = piece
            continue
        out.append(piece)
        pending = ""
    if len(pending) >= 6:
        out.append(pending)
    return out


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text[:4])


def _cjk_around(text: str, match: re.Match) -> bool:
    before, after = text[max(0, match.start() - 1) : match.start()], text[match.end() : match.end() + 1]
    return _cjk(before) or _cjk(after)


def candidates(text: str, keywords: tuple[str, ...], k: int = CANDIDATES) -> list[str]:
    """The k sentences that mention the keywords most, best first; ties keep document order. None when no
    sentence mentions any of them: the document does not state the field."""
    sentences = split_sentences(text)
    scored = [
        (sum(w in s.lower() for w in keywords) + 0.1 * sum(s.lower().count(w) for w in keywords), -i, s)
        for i, s in enumerate(sentences)
    ]
    return [s for score, _, s in sorted(scored, reverse=True)[:k] if score > 0]


def instruction(template: str, question: str | None = None) -> str:
    """The free question, or (for a template) the request for its first field; checks the template."""
    if template == "question":
        if not question or not question.strip():
            raise ConfigError('a free question needs its text. Fix: pass --question "...".')
        return question.strip()
    if template not in TEMPLATES:
        raise ConfigError(f"template {template!r} is unknown. Valid: question, {', '.join(TEMPLATES)}.")
    return field_instruction(template, next(iter(TEMPLATES[template])))


def field_instruction(template: str, name: str) -> str:
    return (
        f"Which sentence of the document states {TEMPLATES[template][name][0]}? "
        'Reply as JSON with the sentence in "quote".'
    )


def value_instruction(template: str, name: str, quote: str) -> str:
    return f'The document says: "{quote}"\nWhat are {TEMPLATES[template][name][0]}? Answer in one short sentence.'


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    quote: str
    verified: bool  # the quote occurs in the document (whitespace-insensitive)
    page: int | None
    supported: bool = True  # every number, amount, date and company name in the value is in the quote
    unsupported: tuple[str, ...] = ()  # the value's facts that the quote lacks
    checked: bool = False  # the value holds such facts at all ("Party A and Party B" holds none)
    found: bool = True  # False: no sentence of the document mentions the field; nothing was asked or invented

    @property
    def answer(self) -> str:
        """What to show as the field's answer: the value when its quote backs it, else the quote itself."""
        if not self.found:
            return NOT_FOUND
        return self.value if self.supported else self.quote

    def marks(self) -> tuple[str, str]:
        if not self.found:
            return "➖ no quote", "➖ not in the document"
        verified = "✅" if self.verified else "❌"
        if self.supported:
            return verified, "✅" if self.checked else "➖ no figure or name to check"
        shown = self.value if len(self.value) <= 80 else self.value[:80] + "…"
        return verified, f"⚠️ the model wrote «{shown}»: {', '.join(self.unsupported)} not in the quote"


@dataclass(frozen=True)
class Answer(Exportable):
    template: str
    strategy: str  # "whole" or "map-reduce"
    text: str
    fields: tuple[Field, ...]
    prompt_tokens: int
    ttft_s: float | None
    total_s: float
    tokens_per_s: float | None
    sections: int = 1
    document: str = ""  # the document's name, and its length in characters
    chars: int = 0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fields"] = {f.name: {k: v for k, v in asdict(f).items() if k != "name"} for f in self.fields}
        return d

    def fields_table(self) -> str:
        """Each field with its answer, quote and marks (Markdown); a free question's answer as it is."""
        if not self.fields:
            return self.text
        rows = ["| field | answer | quote | verified | supported | page |", "|---|---|---|---|---|---|"]
        for f in self.fields:
            cell = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
            verified, supported = f.marks()
            rows.append(
                f"| {f.name} | {cell(f.answer)} | {cell(f.quote)} | {verified} | {cell(supported)} | {f.page or ''} |"
            )
        return "\n".join(rows)

    def csv_rows(self) -> tuple[list[str], list[list]]:
        return (
            ["field", "answer", "value", "quote", "verified", "supported", "page"],
            [[f.name, f.answer, f.value, f.quote, *f.marks(), f.page] for f in self.fields],
        )

    def timing_line(self) -> str:
        """The line the CLI, the Document QA tab and the Markdown export show under the fields: how the document was
        read, the prompt, TTFT (the reply module's), decode speed and the whole time."""
        return (
            f"strategy {self.strategy} · {self.prompt_tokens:,} prompt tokens · TTFT {ttft_text(self.ttft_s)} · "
            f"{rate_text(self.tokens_per_s)} · {self.total_s:.1f} s"
        )

    def to_markdown(self) -> str:
        head = f"# {self.document}\n\n" if self.document else ""
        return f"{head}{self.fields_table()}\n\n*{self.template}* · {self.timing_line()}"


@dataclass(frozen=True)
class Fit:
    document_tokens: int
    prompt_tokens: int
    max_model_len: int
    answer_tokens: int
    kv_cache_tokens: int | None

    @property
    def fits(self) -> bool:
        return self.prompt_tokens + self.answer_tokens <= self.max_model_len

    def explain(self) -> str:
        verdict = "fits in one prompt" if self.fits else "does not fit in one prompt"
        kv = f"; the KV cache holds {self.kv_cache_tokens:,} tokens" if self.kv_cache_tokens else ""
        return (
            f"{self.document_tokens:,} document tokens, {self.prompt_tokens:,} with the prompt, "
            f"+{self.answer_tokens} for the answer vs max_model_len {self.max_model_len:,}: {verdict}{kv}"
        )


def _messages(text: str, ask: str) -> list[dict]:
    return [
        {"role": "system", "content": f"{SYSTEM}\n\n<document>\n{text}\n</document>"},
        {"role": "user", "content": ask},
    ]


def measure_fit(
    client,
    document: Document,
    template: str = "contract",
    question: str | None = None,
    answer_tokens: int = 256,
    kv_cache_tokens: int | None = None,
) -> Fit:
    prompt = client.count_tokens(_messages(document.text, instruction(template, question)))
    return Fit(client.count_tokens(document.text), prompt, client.max_model_len(), answer_tokens, kv_cache_tokens)


def ground(document: Document, name: str, value: str, quote: str) -> Field:
    """The field with both marks: its quote found in the document, its value's facts found in its quote."""
    at = find_quote(document, quote) if quote else None
    missing = tuple(fact_check.unsupported(value, quote))
    checked = bool(fact_check.numbers(value) or fact_check.companies(value))
    return Field(
        name,
        value.strip(),
        quote.strip(),
        at is not None,
        document.page_of(at) if at is not None else None,
        supported=not missing,
        unsupported=missing,
        checked=checked,
    )


def _parse_quote(text: str) -> str:
    try:
        item = json.loads(text)
    except json.JSONDecodeError:
        return ""
    return str(item.get("quote", "")) if isinstance(item, dict) else ""


def ask(
    client,
    document: Document,
    template: str = "question",
    question: str | None = None,
    answer_tokens: int = 256,
    on_text: Callable[[str], None] | None = None,
    thinking: bool | None = None,
) -> Answer:
    """Answer one question or fill one template about the document, choosing the strategy. `thinking` None leaves
    each request its default (thinking.THINKING_DEFAULTS: the free answer the model's own, the fields' quotes and values
    off); True or False sets it for every request."""
    if thinking is not None:
        client = client.with_thinking(thinking)
    ask_text = instruction(template, question)
    fit = measure_fit(client, document, template, question, answer_tokens)
    if fit.fits:
        answer = _one_call(client, document, document.text, template, ask_text, answer_tokens, on_text, "whole")
    elif template != "question":
        answer = _one_call(client, document, document.text, template, ask_text, answer_tokens, on_text, "retrieval")
    else:
        answer = _map_reduce(client, document, ask_text, fit, answer_tokens, on_text)
    return replace(answer, document=document.name, chars=document.chars)


# A value is one short sentence: a small model that starts repeating itself ("The document says: The document
# says: ...") is stopped at the first line break and the token cap, and a phrase repeated back to back is
# kept once (trim_repetition). No sampling penalty: on vLLM's CPU build a repetition_penalty request
# stalled the engine until its execute_model timeout (300 s) and killed it.
VALUE_TOKENS = 64
_VALUE_PARAMS = {"stop": ["\n"]}
_REPEATED = re.compile(r"(.{6,}?)\s*\1", re.S)


def trim_repetition(text: str) -> str:
    """Keep one copy of the first phrase (6+ characters) that the model repeated back to back, dropping
    the further copies and the cut-off one at the end."""
    match = _REPEATED.search(text)
    if match is None:
        return text.strip()
    phrase = match.group(1)
    rest = text[match.end() :]
    while (stripped := rest.lstrip()).startswith(phrase):
        rest = stripped[len(phrase) :]
    if stripped and phrase.startswith(stripped):  # a copy cut off by the token cap
        rest = ""
    return (text[: match.start()] + phrase + rest).strip()


def _stream(
    client, text, ask_text, answer_tokens, on_text, schema: dict | None = None, task: str = "docqa-answer", **extra
):
    """One request. `task` picks its thinking default (thinking.THINKING_DEFAULTS: the quote and the value are
    structured steps, off unless asked); a thinking request gets its reasoning budget on top of `answer_tokens`, and
    one that runs out while thinking is an error that says so, never an empty value."""
    params = {"temperature": 0, "max_tokens": answer_tokens, "task": task, **extra}
    if schema:
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "field", "schema": schema}}
    result = None
    for event in client.chat_stream(_messages(text, ask_text), **params):
        if event.kind == "content" and on_text:
            on_text(event.text)
        result = event.result or result
    if result.ran_out_thinking:
        raise WorkbenchError(f"{task}: {result.notice()}")
    return result


def _one_call(client, document, text, template, ask_text, answer_tokens, on_text, strategy) -> Answer:
    """The free question, or every field of the template, over one piece of text."""
    start = time.perf_counter()
    if template == "question":
        r = _stream(client, text, ask_text, answer_tokens, on_text)
        return Answer(template, strategy, r.text, (), r.usage.prompt_tokens, r.ttft_s, r.total_s, r.tokens_per_s)
    fields, results = [], []
    for name, (_, keywords) in TEMPLATES[template].items():
        if on_text:
            on_text(f"\n{name}: ")
        found = candidates(document.text, keywords)
        if not found:  # no sentence mentions the field: say so rather than let the model invent a value
            if on_text:
                on_text(NOT_FOUND)
            fields.append(Field(name, NOT_FOUND, "", False, None, found=False))
            continue
        context = text if strategy == "whole" else "\n".join(found)  # retrieval: only the candidates
        r = _stream(
            client,
            context,
            field_instruction(template, name),
            answer_tokens,
            None,
            quote_schema(found),
            task="docqa-quote",
        )
        quote = _parse_quote(r.text)
        if on_text:
            on_text(f"«{quote}» → ")
        v = _stream(
            client,
            context,
            value_instruction(template, name, quote),
            VALUE_TOKENS,
            on_text,
            task="docqa-values",
            **_VALUE_PARAMS,
        )
        results += [r, v]
        fields.append(ground(document, name, trim_repetition(v.text), quote))
    rates = [r.tokens_per_s for r in results if r.tokens_per_s]
    text_out = json.dumps({f.name: {"value": f.value, "quote": f.quote} for f in fields}, ensure_ascii=False)
    first = results[0] if results else None  # None: the document states none of the template's fields
    return Answer(
        template,
        strategy,
        text_out,
        tuple(fields),
        first.usage.prompt_tokens if first else 0,
        first.ttft_s if first else None,
        time.perf_counter() - start,
        sum(rates) / len(rates) if rates else None,
    )


def sections(text: str, max_chars: int) -> list[str]:
    """Cut at line breaks into pieces of at most max_chars (a longer line is cut where it must be)."""
    out, current = [], ""
    for line in text.split("\n"):
        while len(line) > max_chars:
            out.append(current) if current else None
            current = ""
            out.append(line[:max_chars])
            line = line[max_chars:]
        if len(current) + len(line) + 1 > max_chars and current:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def _map_reduce(client, document, ask_text, fit: Fit, answer_tokens, on_text) -> Answer:
    """A free question over a document too long for one prompt: ask each section, then combine."""
    overhead = fit.prompt_tokens - fit.document_tokens
    budget = fit.max_model_len - answer_tokens - overhead - 64
    if budget < 256:
        raise ConfigError(
            f"max_model_len {fit.max_model_len} leaves {budget} tokens per section. "
            "Fix: serve with a larger --max-model-len or ask for a shorter answer."
        )
    chars_per_token = len(document.text) / max(1, fit.document_tokens)
    parts = sections(document.text, max(200, int(budget * chars_per_token * 0.9)))
    start = time.perf_counter()
    partial = []
    for i, part in enumerate(parts, 1):
        if on_text:
            on_text(f"\n[section {i} of {len(parts)}] ")
        partial.append(_one_call(client, document, part, "question", ask_text, answer_tokens, on_text, "map"))
    notes = "\n\n".join(f"Section {i}: {a.text}" for i, a in enumerate(partial, 1))
    if on_text:
        on_text("\n[combined] ")
    final = _one_call(
        client,
        document,
        notes,
        "question",
        f"These are answers found in each section of a long document. Combine them into one answer to: {ask_text}",
        answer_tokens,
        on_text,
        "reduce",
    )
    return Answer(
        "question",
        "map-reduce",
        final.text,
        (),
        sum(a.prompt_tokens for a in partial) + final.prompt_tokens,
        partial[0].ttft_s,
        time.perf_counter() - start,
        final.tokens_per_s,
        len(parts),
    )
