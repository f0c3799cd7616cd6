"""The generated contract set: each contract holds the facts its manifest says it holds, in both formats, and
the evaluation's report reads the way `workbench docqa-eval` prints it."""

import json

from workbench.tasks import docqa_dataset, documents


def test_every_expected_fact_is_in_its_contract_in_both_formats(tmp_path):
    entries = docqa_dataset.make_eval_set(tmp_path, count=2)
    assert json.loads((tmp_path / "facts.json").read_text()) == entries
    assert [e["facts"]["language"] for e in entries] == ["zh", "en"]
    for entry in entries:
        for fmt in ("pdf", "docx"):
            text = documents.load(tmp_path / f"{entry['stem']}.{fmt}").text.replace(" ", "").replace(",", "")
            for field, needles in docqa_dataset.expected(entry["facts"]).items():
                assert all(n.replace(" ", "").replace(",", "") in text for n in needles), (entry["stem"], fmt, field)


def test_the_report_prints_its_summary_and_saves_its_rows(tmp_path):
    row = {
        "document": "c.pdf",
        "language": "en",
        "field": "parties",
        "value_correct": True,
        "quote_correct": True,
        "verified": True,
        "supported": True,
        "checked": True,
        "answer_correct": True,
    }
    summary = {
        "all": {
            "fields": 1,
            "value_accuracy": 1.0,
            "quote_accuracy": 1.0,
            "verified_share": 1.0,
            "supported_share": 1.0,
            "answer_accuracy": 1.0,
        }
    }
    report = docqa_dataset.DocqaEvalReport(summary=summary, per_field={}, rows=[row], verified_marks_wrong=0)
    assert report.to_text().splitlines()[1].split() == ["all", "1", "100%", "100%", "100%", "100%", "100%"]
    files = report.save(tmp_path, "eval")
    assert files["csv"].read_text().splitlines()[0] == ",".join(row)
    assert json.loads(files["json"].read_text())["rows"] == [row]
