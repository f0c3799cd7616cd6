"""What a checkpoint costs, measured through the served engine: perplexity scored by the server itself."""

import math

import pytest

from workbench.errors import ConfigError
from workbench.quantization import quality, quantize


def test_empty_text_is_refused():
    with pytest.raises(ConfigError, match="the text to score is empty"):
        quality.perplexity(None, "  \n")


def test_the_held_out_text_is_the_end_of_pythons_docs_that_calibration_never_reads():
    text = quality.eval_text(3000)
    assert len(text) == 3000 and quantize.default_text().endswith(text)


def test_perplexity_through_the_served_engine(client, tmp_path):
    """Every prompt token but each chunk's first is scored, and the same text scores the same from a file."""
    text = quality.eval_text(3000)
    result = quality.perplexity(client, text, chunk_chars=1000)
    first_tokens = [client.count_tokens(text[i : i + 1000]) for i in range(0, 3000, 1000)]
    assert result["tokens"] == sum(first_tokens) - 3
    assert 1 < result["ppl"] < 100 and math.isfinite(result["ppl"])  # the bundled model measured 10.76 on 3,000
    path = tmp_path / "held-out.txt"
    path.write_text(text)
    again = quality.eval_ppl(client, path)
    assert again["model"] == "smollm2-135m-instruct" and again["tokens"] == quality.perplexity(client, text)["tokens"]
