"""The Document QA tab's context-reliability section, driven through gradio_client on the session's engine."""

import json

import pytest


def test_the_context_section_draws_the_map_with_the_memory_answer_and_refuses_a_bad_target(app_url, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    ui = Client(app_url, verbose=False)
    headline, plot, table, json_file = ui.predict(None, False, "1024", "0", 0.95, "RTX 3090", api_name="/context_map")
    assert headline.startswith("**default**: memory allows 8K (") and "quality holds" in headline
    assert plot is not None and "| 1,024 |" in table
    saved = json.loads(open(json_file).read())
    assert [(g["length"], g["depth"], g["n"]) for g in saved["maps"][0]["grid"]] == [(1024, 0.0, 4)]  # 2 × (zh, en)
    with pytest.raises(AppError, match=r"target 0.0 is outside \(0, 1\]"):  # an emptied Number arrives as 0
        ui.predict(None, False, "1024", "0", 0, "RTX 3090", api_name="/context_map")
    short = tmp_path / "note.txt"
    short.write_text("A short note that says very little.")
    with pytest.raises(AppError, match="note.txt holds .* shorter than the smallest length asked for"):
        ui.predict(handle_file(str(short)), True, "1024", "0", 0.95, "", api_name="/context_map")
