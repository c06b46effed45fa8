"""Docs that cannot drift: every command, option and setting is documented."""

from __future__ import annotations

import dataclasses

import typer.main

from synoptic.cli import app
from synoptic.settings import Settings

from .conftest import ROOT

CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
README = (ROOT / "README.md").read_text()


def test_every_command_and_option_is_documented() -> None:
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert commands
    for name, command in commands.items():
        assert f"## `synoptic {name}" in CLI_DOC, name
        assert f"synoptic {name}" in README, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in CLI_DOC, (name, opt)


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(Settings):
        assert f"`{field.name}`" in CLI_DOC, field.name


def test_quick_start_has_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
