"""What every `auth0-sync` command shares (issue 18, item 8): a version, an example in its
help, --debug, --region/--profile where it talks to AWS, one error line and exit code for
an unforeseen error, and a LICENSE file that says what pyproject.toml says."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from auth0_sync_cli import main as cli_main
from auth0_sync_cli.main import build_parser, main, sub_parsers

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def commands() -> list[argparse.ArgumentParser]:
    return list(sub_parsers(build_parser()))


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_version_is_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])

    assert info.value.code == 0
    assert capsys.readouterr().out == f"auth0-sync {PYPROJECT['version']}\n"


@pytest.mark.parametrize("parser", commands(), ids=lambda p: p.prog)
def test_every_command_has_an_example_and_debug(parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()

    assert "example" in text
    examples = [line for line in text.splitlines() if line.startswith("  auth0-sync ")]
    assert examples, text
    # The example is printed as written, not re-wrapped into one paragraph.
    assert all(line.split()[1] in {a.prog.split()[1] for a in commands()} for line in examples)
    assert "--debug" in flags(parser)


def test_the_top_level_help_defines_the_exit_codes() -> None:
    text = build_parser().format_help()

    for code in ("0", "1", "2", "70", "130", "141"):
        assert any(line.strip().startswith(f"{code} ") for line in text.splitlines()), code
    assert "AWS_DEFAULT_REGION" in text
    assert "AWS_PROFILE" in text


def test_commands_that_talk_to_aws_take_region_and_profile() -> None:
    aws = {p.prog for p in commands() if {"--region", "--profile"} <= flags(p)}

    assert aws == {
        "auth0-sync process",
        "auth0-sync dlq list",
        "auth0-sync dlq show",
        "auth0-sync dlq delete",
        "auth0-sync replay",
        "auth0-sync redrive",
        "auth0-sync backfill",
        "auth0-sync reconcile",
        "auth0-sync catch-up",
        "auth0-sync streams health",
    }


def test_one_spelling_for_the_crm_token_and_the_event_type() -> None:
    every_flag = set().union(*(flags(p) for p in commands()))

    assert "--crm-token-file" in every_flag
    assert not every_flag & {"--token", "--types", "--event-type"}


def test_an_unforeseen_error_is_one_line_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_args: argparse.Namespace) -> int:
        raise ValueError("something nobody foresaw")

    real = cli_main.build_parser

    def parser_with_a_broken_command() -> argparse.ArgumentParser:
        parser = real()
        for sub in sub_parsers(parser):
            if sub.prog == "auth0-sync demo":
                sub.set_defaults(func=broken)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", parser_with_a_broken_command)

    code = main(["demo"])

    assert code == 70
    assert capsys.readouterr().err == (
        "auth0-sync demo: internal error: ValueError: something nobody foresaw (a bug: run "
        "again with --debug for the traceback and report it)\n"
    )


def test_license_file_matches_pyproject() -> None:
    assert PYPROJECT["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")

    assert "Apache License" in text.splitlines()[1]
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


SECRET_WORDS = ("token", "secret", "bearer", "password", "api-key")


def test_no_flag_takes_a_secret_on_the_command_line() -> None:
    # Issue 17: `ps` and the shell's history show every argument; a secret comes from a
    # file (a FILE flag) or the environment. Flags about secrets, not holding one, are fine.
    for parser in commands():
        for action in parser._actions:
            for flag in action.option_strings:
                if any(word in flag for word in SECRET_WORDS):
                    takes_a_value = action.nargs != 0
                    assert not takes_a_value or flag.endswith("-file"), (parser.prog, flag)


# -- issue 27, item 5: one convention for flags, names and help ------------------------------


def test_every_argument_has_help() -> None:
    # A flag hidden on purpose (SUPPRESS) must be an old spelling of a flag that has help.
    for parser in [build_parser(), *commands()]:
        shown = {a.dest for a in parser._actions if a.help and a.help != argparse.SUPPRESS}
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = (parser.prog, action.option_strings or action.dest)
            assert action.help, name
            if action.help == argparse.SUPPRESS:
                assert action.dest in shown, name


@pytest.mark.parametrize(
    "argv",
    [
        ["--region", "eu-north-1", "--profile", "ops", "dlq", "list"],
        ["dlq", "list", "--region", "eu-north-1", "--profile", "ops"],
        ["--region", "eu-north-1", "dlq", "list", "--profile", "ops"],
        ["--profile", "ops", "streams", "health", "est_abc123", "--region", "eu-north-1"],
    ],
    ids=["before", "after", "both", "streams-health"],
)
def test_region_and_profile_go_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)

    assert (args.region, args.profile) == ("eu-north-1", "ops")


def test_region_for_a_command_without_aws_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--region", "eu-north-1", "crm-server", "--port", "0"])

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("auth0-sync crm-server: error: --region goes with the commands that")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["dlqq", "list"], "'dlq'"),
        (["dlq", "lsit"], "'list'"),
        (["sandbx"], "'sandbox'"),
        (["streams", "helth", "est_abc123"], "'health'"),
        (["process", "x.json", "--state", "awz"], "'aws'"),
    ],
)
def test_a_misspelled_command_or_choice_gets_the_nearest_one(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)

    assert info.value.code == 2
    assert f"(did you mean {suggestion}?)" in capsys.readouterr().err


def test_nothing_close_gets_no_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["frobnicate"])

    err = capsys.readouterr().err
    assert "invalid choice: 'frobnicate'; choose from" in err
    assert "did you mean" not in err


RATE_UNIT = "CRM calls per second"


def test_rate_means_crm_calls_per_second_wherever_it_appears() -> None:
    # One meaning per flag name: the unit the CRM's own limit is stated in.
    with_rate = {
        p.prog: action.help
        for p in commands()
        for action in p._actions
        if "--rate" in action.option_strings
    }

    assert set(with_rate) == {
        "auth0-sync replay",
        "auth0-sync redrive",
        "auth0-sync backfill",
        "auth0-sync reconcile",
        "auth0-sync catch-up",
    }
    for prog, help_text in with_rate.items():
        assert RATE_UNIT in (help_text or ""), prog
