"""README accuracy (issue 18, item 11): every `auth0-sync` command the README shows in a code
block is one the CLI accepts today, each picture it shows exists, and each appears once."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from auth0_sync_cli.main import build_parser

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
# What the README writes for a value the reader fills in, and a value of that shape.
PLACEHOLDERS = {
    "est_...": "est_abc123",
    "'auth0|65e5...'": "auth0|65e5",
}


def shown_commands() -> list[str]:
    """Commands in code blocks: `$ auth0-sync ...` lines, or every `auth0-sync ...` line of
    a block without prompts (a block of commands only), continuation lines joined."""
    commands = []
    fences = r"^[ ]*```\n(.*?)^[ ]*```"
    for block in re.findall(fences, README, flags=re.MULTILINE | re.DOTALL):
        lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
        prompted = any(line.startswith("$ ") for line in lines)
        for line in lines:
            if prompted and not line.startswith("$ auth0-sync "):
                continue
            command = line.removeprefix("$ ").split("  #")[0].strip()
            if command.startswith("auth0-sync "):
                commands.append(command)
    return commands


def test_the_readme_shows_commands() -> None:
    assert len(shown_commands()) >= 8, shown_commands()


@pytest.mark.parametrize("command", shown_commands())
def test_every_command_in_the_readme_is_accepted(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    argv = shlex.split(command)[1:]
    if {"--help", "--version"} & set(argv):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(argv)
        assert exit_info.value.code == 0
    else:  # a mistake would exit 2 with argparse's message
        build_parser().parse_args(argv)


def test_each_picture_exists_and_appears_once() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", README)

    assert "docs/architecture.png" in pictures
    assert len(pictures) == len(set(pictures)), pictures
    for picture in pictures:
        assert (REPO / picture).stat().st_size > 0, picture


def test_each_section_appears_once() -> None:
    headings = re.findall(r"^#{2,4} .+$", README, flags=re.MULTILINE)
    assert len(headings) == len(set(headings)), headings


def test_no_ascii_diagram_is_left() -> None:
    assert "──▶" not in README
    assert "-->" not in README.replace("<!--", "")


def test_the_context_table_has_every_key_the_stack_reads() -> None:
    from infra.config import context_keys

    table = README.split("| Context key | Default | What it does |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)

    assert sorted(rows) == sorted(context_keys())
    assert len(rows) == len(set(rows))


def test_every_prompted_command_has_its_output_under_it() -> None:
    # A block that shows `$ command` lines says what each prints: an empty example (the
    # README once showed `$ auth0-sync replay --dry-run` with nothing under it) fails here.
    fences = r"^[ ]*```\n(.*?)^[ ]*```"
    empty = []
    for block in re.findall(fences, README, flags=re.MULTILINE | re.DOTALL):
        lines = block.splitlines()
        for number, line in enumerate(lines):
            if not line.startswith("$ "):
                continue
            after = lines[number + 1] if number + 1 < len(lines) else ""
            if not after.strip() or after.startswith("$ "):
                empty.append(line)
    assert empty == []


def test_every_picture_in_docs_is_shown_by_a_page() -> None:
    # An image no page shows is an orphan that keeps old figures around (issue 27, item 6).
    pages = [README, *(p.read_text(encoding="utf-8") for p in (REPO / "docs").rglob("*.md"))]
    shown: set[str] = set()
    for text in pages:
        shown.update(Path(link).name for link in re.findall(r"\]\(([^)\s]+\.png)\)", text))
    pictures = {p.name for p in (REPO / "docs").rglob("*.png")}

    assert sorted(pictures - shown) == []
