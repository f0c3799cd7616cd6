"""The daily report's accuracy set: the alerts against the planted labels (the subtle drop below the rule is the
one miss, and quiet days raise none), and `compare`'s `report` task scoring a served model's prose."""

import pytest

from workbench.measurement import compare_request, compare_tasks
from workbench.report import accuracy


def test_the_alerts_find_every_planted_anomaly_above_the_rule_and_none_on_quiet_days(tmp_path):
    result = accuracy.evaluate(None, tmp_path)
    s = result["summary"]
    assert s["days"] == 18 and s["quiet_days"] == 8 and s["alerts_on_quiet_days"] == 0
    assert s["alert_precision"] == 1.0
    missed = [r["day"] for r in result["rows"] if r["labels"] > r["found"]]
    assert missed == ["2026-04-21"]  # West at 85 %: a 15 % drop, under the 20 % rule
    assert s["alert_recall"] == 9 / 10


def test_an_alert_on_an_unlabelled_value_counts_against_precision():
    scored = accuracy.score_alerts("2026-11-17", [{"value": "East", "kind": "drop"}, {"value": "West", "kind": "drop"}])
    assert (scored["alerts"], scored["right"], scored["labels"], scored["found"]) == (2, 1, 1, 1)


@pytest.mark.slow
def test_compare_has_a_report_task_that_scores_the_prose(client, tmp_path):
    assert compare_request.TASKS["report"][1] == "score"
    settings = compare_request.TaskSettings(items=1)
    result = compare_tasks.run_task("report", client, settings, tmp_path / "work", tmp_path / "shared")
    assert result["kind"] == "score" and [i["id"] for i in result["items"]] == ["2026-03-17"]
    assert 0.0 <= result["items"][0]["score"] <= 1.0 and result["summary"]["alert_recall"] == 1.0
    assert compare_tasks.items_digest("report", settings) != compare_tasks.items_digest(
        "report", compare_request.TaskSettings(items=2)
    )
