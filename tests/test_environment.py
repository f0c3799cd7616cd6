"""environment.yml (conda, GPU box) lists the same packages as pyproject.toml."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10, which pyproject allows, has no tomllib; the test extra brings tomli there
    import tomli as tomllib

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    name, _, spec = re.match(r"([A-Za-z0-9_.\-]+)(\[.*?\])?(.*)", requirement.strip()).group(1, 2, 3)
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_normalise(r) for r in project["dependencies"] + extras["gpu"] + extras["notebooks"] + extras["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_normalise(r) for r in pip_section}
    assert listed - wanted == set(), "environment.yml has packages pyproject.toml lacks"
    assert wanted - listed == set(), "pyproject.toml has packages environment.yml lacks"
