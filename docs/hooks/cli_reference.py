"""An MkDocs hook that writes the CLI reference at build time: it walks `workbench.cli.build_parser()` and its
subparsers and puts, in place of the marker in docs/cli.md, one section per command (its help, its usage line and a
table of its arguments). It reads the parsers only; it knows nothing about any one command, so a flag added,
renamed or dropped in cli.py shows on the next build."""

import argparse
import html
import re

MARKER = "<!-- cli-reference -->"
USAGE_WIDTH = 100  # argparse wraps usage to the terminal; a fixed width makes the page the same on every machine


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser, help) for every command under `parser`, depth first, in the parser's own order; a group
    (`workbench ab`) comes before its subcommands."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            yield (*path, name), sub, helps.get(name) or sub.description or ""
            yield from commands(sub, (*path, name))


def _inline(text: str) -> str:
    """Help text as Markdown for a table cell: `|` and `<` escaped outside code spans, kept inside them."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else html.escape(p, quote=False).replace("|", "\\|") for p in parts)


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>".replace("|", "&#124;")


def _help(action: argparse.Action, prog: str) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    params = dict(vars(action), prog=prog)
    if action.choices is not None:
        params["choices"] = ", ".join(map(str, action.choices))
    try:
        return action.help % params  # argparse's own expansion of %(default)s and the like
    except (KeyError, TypeError, ValueError):
        return action.help


def _value(action: argparse.Action) -> str:
    if action.nargs == 0 or (not action.option_strings and action.choices is None and action.metavar is None):
        return ""
    if action.choices is not None:
        return " · ".join(_code(str(c)) for c in action.choices)
    metavar = (
        action.metavar
        if action.metavar is not None
        else (action.dest if not action.option_strings else action.dest.upper())
    )
    text = " ".join(metavar) if isinstance(metavar, tuple) else str(metavar)
    return _code(text + (" …" if action.nargs in ("+", "*", argparse.REMAINDER) else ""))


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.required:
        return ""
    default = action.default
    if isinstance(default, (list, tuple)):
        default = ",".join(map(str, default))
    return _code(str(default))


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = ", ".join(_code(s) for s in action.option_strings) or _code(action.dest)
        rows.append(f"| {name} | {_value(action)} | {_default(action)} | {_inline(_help(action, parser.prog))} |")
    if not rows:
        return []
    return ["| argument | value | default | what it does |", "|---|---|---|---|", *rows, ""]


def reference(parser: argparse.ArgumentParser) -> str:
    lines = []
    for path, sub, help in commands(parser):
        sub.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=USAGE_WIDTH)
        level = "#" * (1 + len(path))
        usage = sub.format_usage().removeprefix("usage: ").rstrip().replace("\n" + " " * len("usage: "), "\n")
        lines += [
            f"{level} workbench {' '.join(path)}",
            "",
            _inline(help),
            "",
            "```text",
            usage,
            "```",
            "",
            *_arguments(sub),
        ]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from workbench import cli  # imported at build time, so the page follows the parsers as they are now

    return markdown.replace(MARKER, reference(cli.build_parser()))
