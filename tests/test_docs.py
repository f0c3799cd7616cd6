"""The documentation site builds strictly (a broken link or anchor, a page missing from the menu, a menu entry with
no page each fail it), and its CLI reference, written at build time from the parsers, shows every command and
every flag that `workbench` takes."""

import argparse
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import cli

ROOT = Path(__file__).resolve().parents[1]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, f"mkdocs build --strict failed:\n{out.stderr[-4000:]}"
    return site_dir


def test_the_site_builds_strictly_with_every_page_of_the_menu(site):
    nav_pages = ["getting-started", "rtx3090", "planner", "architecture", "measured", "what-ran-where", "cli"]
    for page in nav_pages:
        assert (site / page / "index.html").is_file(), f"{page} was not built"
    home = (site / "index.html").read_text()
    assert "Qwen3-14B on one 24 GB" in home and 'href="getting-started/"' in home


def test_the_cli_reference_shows_every_command_and_flag(site):
    page = html.unescape((site / "cli" / "index.html").read_text())
    commands = list(_commands(cli.build_parser()))
    assert len(commands) >= 20  # serve, plan, quantize, ..., ab run: the parser itself, not a copy
    for path, parser in commands:
        name = "workbench " + " ".join(path)
        assert f">{name}<" in page, f"`{name}` is missing from the CLI reference"
        for action in parser._actions:
            for flag in [] if isinstance(action, argparse._HelpAction) else action.option_strings:
                assert f"<code>{flag}</code>" in page, f"`{name} {flag}` is missing from the CLI reference"


def test_the_readme_links_into_the_site_resolve():
    """The README is the landing page: every relative link it has (pages, the screenshot) points at a file here."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?://)[^)#]+)(?:#[^)]*)?\)", readme)
    assert any(link.startswith("docs/") for link in links)
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert missing == [], f"README.md links to files that do not exist: {missing}"
