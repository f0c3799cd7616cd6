"""Document QA against the real engine: strategies, grounding, follow-ups, the CLI end to end."""

import json
import subprocess
import sys

import pytest

from workbench.errors import ConfigError
from workbench.tasks import docqa, docqa_dataset, documents


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contracts")
    facts = {
        "en": docqa_dataset.make_contract(folder / "en-3k.docx", "en", 3000, seed=11),
        "zh": docqa_dataset.make_contract(folder / "zh-12k.pdf", "zh", 12_000, seed=12),
    }
    return folder, facts


def test_grounding_marks_a_fabricated_quote(files):
    folder, facts = files
    doc = documents.load(folder / "en-3k.docx")
    amount = f"{facts['en'].amount:,}"
    real = docqa.ground(doc, "payment_terms", amount, f"The total contract amount is USD {amount}.")
    fake = docqa.ground(doc, "payment_terms", amount, f"The total contract amount is USD {amount} plus VAT.")
    assert real.verified and real.page == 1
    assert not fake.verified and fake.page is None


def test_sentences_join_pdf_line_breaks(files):
    folder, facts = files
    doc = documents.load(folder / "zh-12k.pdf")
    sentences = docqa.split_sentences(doc.text)
    penalty = [s for s in sentences if "违约金" in s and "逾期" in s]
    assert penalty and all(documents.find_quote(doc, s) is not None for s in sentences)
    assert f"千分之{facts['zh'].penalty_per_mille}向甲方支付违约金。" in penalty[0]


def test_unknown_template_and_missing_question(client, files):
    folder, _ = files
    doc = documents.load(folder / "en-3k.docx")
    with pytest.raises(ConfigError, match="Valid: question, contract, minutes"):
        docqa.ask(client, doc, "invoice")
    with pytest.raises(ConfigError, match="--question"):
        docqa.ask(client, doc, "question", "  ")


def test_short_english_contract_whole_document_with_verified_quotes(client, files):
    folder, facts = files
    doc = documents.load(folder / "en-3k.docx")
    fit = docqa.measure_fit(client, doc)
    assert fit.fits and fit.max_model_len == 4096
    answer = docqa.ask(client, doc, "contract")
    assert answer.strategy == "whole" and [f.name for f in answer.fields] == list(docqa.TEMPLATES["contract"])
    for field in answer.fields:  # a verified mark is never wrong
        assert field.verified == (documents.find_quote(doc, field.quote) is not None)
    payment = next(f for f in answer.fields if f.name == "payment_terms")
    assert f"{facts['en'].amount:,}" in payment.quote


def test_follow_up_reuses_the_document_prefix(client, tmp_path):
    docqa_dataset.make_contract(tmp_path / "unseen.docx", "en", 3000, seed=99)  # nothing cached for it yet
    doc = documents.load(tmp_path / "unseen.docx")
    first = docqa.ask(client, doc, "question", "Who is Party B?")
    follow = docqa.ask(client, doc, "question", "What is the total contract amount?")
    assert first.strategy == follow.strategy == "whole"
    assert follow.ttft_s < first.ttft_s  # the prefix cache served the document


def test_over_context_question_goes_map_reduce(client, files):
    folder, _ = files
    doc = documents.load(folder / "zh-12k.pdf")
    fit = docqa.measure_fit(client, doc, "question", "合同总金额是多少？")
    assert not fit.fits and fit.document_tokens > 4096
    answer = docqa.ask(client, doc, "question", "合同总金额是多少？")
    assert answer.strategy == "map-reduce" and answer.sections >= 5 and answer.text


@pytest.mark.slow
def test_cli_on_the_12k_chinese_contract_pdf(engine, files):
    folder, facts = files
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "docqa",
            str(folder / "zh-12k.pdf"),
            "--template",
            "contract",
            "--url",
            engine.url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["strategy"] == "retrieval" and result["prompt_tokens"] > 0 and result["ttft_s"] > 0
    assert set(result["fields"]) == set(docqa.TEMPLATES["contract"])
    doc = documents.load(folder / "zh-12k.pdf")
    assert 11_500 < doc.chars < 13_500
    for name, field in result["fields"].items():
        assert set(field) == {"value", "quote", "verified", "page", "supported", "unsupported", "checked", "found"}
        if field["verified"]:
            assert documents.find_quote(doc, field["quote"]) is not None, name
        assert field["supported"] == (not field["unsupported"])  # `docqa --json` carries both marks
    liability = result["fields"]["liability_for_breach"]
    assert liability["verified"] and f"千分之{facts['zh'].penalty_per_mille}" in liability["quote"]


def test_a_field_the_document_lacks_comes_back_not_found_never_invented(client, tmp_path):
    (tmp_path / "order.md").write_text(
        "# Hosting order\n\n"
        "Party A (Client): Huaxin Trading Co., Ltd. Party B (Provider): Beta Cloud Ltd.\n"
        "The Provider shall provide managed hosting services for the Client's web shop.\n"
        "The total contract amount is USD 12,000, payable in advance by bank transfer.\n",
        encoding="utf-8",
    )
    doc = documents.load(tmp_path / "order.md")
    answer = docqa.ask(client, doc, "contract")
    fields = {f.name: f for f in answer.fields}
    for name in ("liability_for_breach", "termination_conditions"):  # the order says nothing about either
        field = fields[name]
        assert not field.found and field.answer == "not found" and field.quote == "" and not field.verified
        assert field.marks() == ("➖ no quote", "➖ not in the document")
    assert fields["payment_terms"].found and "12,000" in fields["payment_terms"].quote
    assert (
        "| termination_conditions | not found |  | ➖ no quote | ➖ not in the document |  |" in answer.fields_table()
    )


def test_meeting_minutes_template(client, tmp_path):
    (tmp_path / "minutes.md").write_text(
        "# Weekly platform meeting, 3 March\n\n"
        "Attendees present: Li Wei, Sara Novak and Tom Berg attended the meeting in room 4.\n"
        "The team decided to move the inference cluster to vLLM 0.33 before the end of the month.\n"
        "Action item: Sara Novak will benchmark the GPTQ checkpoint and report back by Friday.\n"
        "The next meeting is on 10 March at 10:00 in the same room.\n",
        encoding="utf-8",
    )
    doc = documents.load(tmp_path / "minutes.md")
    answer = docqa.ask(client, doc, "minutes")
    assert answer.strategy == "whole"
    fields = {f.name: f for f in answer.fields}
    assert list(fields) == ["attendees", "decisions", "action_items", "next_meeting"]
    for field in answer.fields:
        assert field.verified == (documents.find_quote(doc, field.quote) is not None)
    assert "10 March" in fields["next_meeting"].quote
