"""One writer for every result: the JSON is the result's as_dict, the CSV its rows, the Markdown what a person
reads, and each file says the same as the object it came from."""

import csv
import json

from workbench import export, planner
from workbench.measurement import toolseval


class Scores(export.Exportable):
    def as_dict(self):
        return {"name": "scores", "rows": [{"k": "a", "v": 1}, {"k": "b", "v": 2}], "note": "日本語"}

    def csv_rows(self):
        return ["k", "v"], [[r["k"], r["v"]] for r in self.as_dict()["rows"]]

    def to_markdown(self):
        return "| k | v |\n|---|---|\n| a | 1 |\n| b | 2 |"


def test_save_writes_the_three_files_from_the_one_description(tmp_path):
    files = Scores().save(tmp_path / "out", "scores")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.csv", "scores.json", "scores.md"]
    assert json.loads(files["json"].read_text(encoding="utf-8")) == Scores().as_dict()
    assert "日本語" in files["json"].read_text(encoding="utf-8")  # not \\u-escaped
    with files["csv"].open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["k", "v"], ["a", "1"], ["b", "2"]]
    assert files["md"].read_text(encoding="utf-8") == Scores().to_markdown() + "\n"
    assert Scores()._repr_markdown_() == Scores().to_markdown()


def test_a_plan_and_a_parallel_sweep_save_as_the_cli_prints_them(tmp_path):
    answer = planner.plan(planner.PlanRequest(gpu="RTX 3090", quant="gptq-int4"))
    files = answer.save(tmp_path, "plan")
    saved = json.loads(files["json"].read_text())
    assert saved["kv_cache_tokens"] == answer.plan.kv_cache_tokens and saved["vllm_args"][:2] == ["vllm", "serve"]
    assert files["md"].read_text().startswith("### ✅ fits: Qwen3-14B (gptq-int4) on RTX 3090")
    sweep = planner.plan(
        planner.PlanRequest(
            model="Llama-3.1-70B",
            gpu="RTX 3090",
            parallel=True,
            gpus_per_node=4,
            settings=planner.ServeSettings(max_model_len=16384),
        )
    )
    with sweep.save(tmp_path, "sweep")["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(sweep.sweep.rows) and rows[0]["command"].startswith("vllm serve ")


def test_a_dict_result_stays_plain_json(tmp_path):
    report = toolseval.ToolsEvalReport(
        native={
            "categories": {"simple": {"cases": 2, "name": 0.5, "arguments": 0.0, "exact": 0.0}},
            "languages": {},
            "overall": {"cases": 2, "name": 0.5, "arguments": 0.0, "exact": 0.0},
        }
    )
    assert json.loads(report.to_json()) == dict(report)
    assert report.to_csv().splitlines()[1] == "native,simple,2,0.5,0.0,0.0"
    assert "| native | simple | 2 | 50% | 0% | 0% |" in report.to_markdown()
