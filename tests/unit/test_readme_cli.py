"""README's CLI section tells the truth about the parser: every subcommand, option and
argument ``bottle-dash --help`` and each ``COMMAND --help`` offer is in it, on that
command's line, and every field of ``ls --json`` is named."""

from __future__ import annotations

import argparse
from pathlib import Path

from bottle_dash import cli
from bottle_dash.service import make_row

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command the parser offers, ``image build`` included, by its words."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words = f"{prefix} {name}".strip()
                found[words] = sub
                found.update(commands(sub, words))
    return found


def missing_from(line: str, parser: argparse.ArgumentParser) -> list[str]:
    """What ``parser`` accepts that ``line`` does not show: an option by any of its
    spellings, a positional by its metavar or upper-cased name."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            if not any(option in line for option in action.option_strings):
                missing.append("/".join(action.option_strings))
        else:
            shown = str(action.metavar or action.dest).upper()
            if shown not in line:
                missing.append(shown)
    return missing


def test_every_subcommand_and_option_is_in_the_cli_section() -> None:
    text = section("CLI")
    usage = [line for line in text.splitlines() if line.startswith("bottle-dash")]
    parser = cli.build_parser()
    dashboard = [line for line in usage if line.startswith("bottle-dash [")]
    assert dashboard, "the dashboard's own line (global options) is missing"
    assert missing_from(dashboard[0], parser) == []
    found = commands(parser)
    assert "image build" in found and "probe" in found
    for words, sub in found.items():
        if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            continue  # `image` alone: its actions have lines of their own
        lines = [line for line in usage if line.startswith(f"bottle-dash {words} ")]
        assert lines, f"README's CLI section has no line for `bottle-dash {words}`"
        assert missing_from(lines[0], sub) == [], f"`bottle-dash {words}` in README"


def test_every_ls_json_field_is_named_in_the_cli_section() -> None:
    text = section("CLI")
    fields = make_row("web", "docker", None, None).to_dict()
    unnamed = [key for key in fields if f"`{key}`" not in text]
    assert unnamed == []
