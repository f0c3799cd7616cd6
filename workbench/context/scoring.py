"""scoring.py asks for one planted fact through document QA and says what came back: found, wrong or not found.

The question goes the way docqa.py asks for a template's field: the quote first, chosen by schema-guided
decoding from the document's sentences that mention the subject (the fact and its distractor among them), then
the value, written with that sentence in view; docqa.ground marks the quote verified (it is in the document)
and the value supported (its numbers and names are in the quote). Then, in this order:
- the quote is not in the document → not found (an unverified quote proves nothing);
- the quote is the distractor, or the value carries the distractor's value → wrong;
- the value carries the fact's value and is supported by its quote → found;
- anything else (an empty or unsupported value, another sentence) → not found.
It knows nothing about grids or stores.
"""

from dataclasses import asdict, dataclass

from workbench.context.planting import Fact, has_marks
from workbench.serving import thinking as thinking_module
from workbench.tasks import docqa
from workbench.tasks.documents import Document, normalize

FOUND, WRONG, NOT_FOUND = "found", "wrong", "not found"
OUTCOMES = (FOUND, WRONG, NOT_FOUND)
QUOTE_TOKENS = 256


@dataclass(frozen=True)
class Reading:
    """One fact's answer and its outcome, with the reason a person reads."""

    fact: str
    outcome: str
    reason: str
    quote: str
    value: str
    verified: bool
    supported: bool
    prompt_tokens: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def score(fact: Fact, field: docqa.Field) -> Reading:
    """The outcome of one field that document QA returned for the fact (the rules in the module's docstring)."""
    quote, value = field.quote, field.value

    def reading(outcome: str, reason: str) -> Reading:
        return Reading(fact.id, outcome, reason, quote, value, field.verified, field.supported)

    if not field.found or not field.verified:
        return reading(NOT_FOUND, "the quote is not in the document")
    if _is_distractor(fact, quote) or has_marks(value, fact.distractor_marks):
        return reading(WRONG, "read from the distractor")
    if has_marks(value, fact.marks) and field.supported:
        return reading(FOUND, "verified quote, right value")
    if has_marks(value, fact.marks):
        return reading(NOT_FOUND, f"the value's {', '.join(field.unsupported)} not in its quote")
    return reading(NOT_FOUND, "the value does not state the planted answer")


def _is_distractor(fact: Fact, quote: str) -> bool:
    """The quote holds the distractor, or is a piece of it (a sentence split off its lead-in)."""
    q, d = normalize(quote), normalize(fact.distractor)
    return d in q or (len(q) >= 20 and q in d)


def quote_instruction(fact: Fact) -> str:
    return f'Which sentence of the document states {fact.subject}? Reply as JSON with the sentence in "quote".'


def value_instruction(fact: Fact, quote: str) -> str:
    return f'The document says: "{quote}"\nWhat is {fact.subject}? Answer in one short sentence.'


def reserved_tokens(thinking: bool | None) -> int:
    """The answer's share of a cell's length: what the longer of the two requests may write, thinking included."""
    return thinking_module.budget(QUOTE_TOKENS, thinking)


def ask(client, document: Document, fact: Fact, thinking: bool | None = None) -> Reading:
    """Ask for the fact through document QA's two requests (quote, then value) and score the answer. `thinking`
    None leaves each request docqa's default (thinking.THINKING_DEFAULTS); True or False sets both."""
    found = docqa.candidates(document.text, fact.keywords)
    if not found:
        return score(fact, docqa.Field(fact.id, docqa.NOT_FOUND, "", False, None, found=False))
    schema = {"type": "json_schema", "json_schema": {"name": "field", "schema": docqa.quote_schema(found)}}
    r = client.chat(
        docqa._messages(document.text, quote_instruction(fact)),
        task="docqa-quote",  # docqa's prompt
        enable_thinking=thinking,
        temperature=0,
        max_tokens=QUOTE_TOKENS,
        response_format=schema,
    )
    quote = docqa._parse_quote(r.text)
    v = client.chat(
        docqa._messages(document.text, value_instruction(fact, quote)),
        task="docqa-values",
        enable_thinking=thinking,
        temperature=0,
        max_tokens=docqa.VALUE_TOKENS,
        **({} if thinking else docqa._VALUE_PARAMS),
    )  # a stop at the line's end would cut the thought
    field = docqa.ground(document, fact.id, docqa.trim_repetition(v.text), quote)
    reading = score(fact, field)
    if r.ran_out_thinking or v.ran_out_thinking:
        reading = Reading(
            fact.id, NOT_FOUND, "ran out of tokens while thinking", quote, field.value, field.verified, field.supported
        )
    return Reading(**{**reading.as_dict(), "prompt_tokens": r.usage.prompt_tokens})
