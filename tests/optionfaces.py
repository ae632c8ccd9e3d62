"""What each face accepts, written out as plain data: the pinned reference is
``tests/reference/option_faces.json`` (recorded from the code before options became one table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from imgprep.cli.main import cli

REFERENCE = Path(__file__).parent / "reference" / "option_faces.json"
COMMANDS = ("convert", "prepare", "pack", "verify", "inspect", "merge", "cleanup", "launch",
            "processing prepare", "processing pack")


def _type(kind: click.ParamType) -> Any:
    if isinstance(kind, click.Choice):  # with the old spellings still taken but not listed
        return {"choice": sorted([*kind.choices, *getattr(kind, "aliases", ())])}
    if isinstance(kind, click.IntRange | click.FloatRange):
        return {kind.name: [kind.min, kind.max, kind.min_open, kind.max_open]}
    return kind.name


def _param(param: click.Parameter) -> dict[str, Any]:
    row: dict[str, Any] = {"opts": sorted(param.opts), "secondary": sorted(param.secondary_opts),
                           "type": _type(param.type), "required": param.required, "multiple": param.multiple,
                           "nargs": param.nargs}
    default = param.default
    if repr(default) == "Sentinel.UNSET":  # click 8.2's "no default": a flag is False, an option None
        default = False if getattr(param, "is_flag", False) and not param.secondary_opts else None
    row["default"] = default if isinstance(default, str | int | float | bool | type(None)) else repr(default)
    if isinstance(param, click.Option):
        row.update(flag=param.is_flag, envvar=param.envvar, count=param.count)
    return row


def command(path: str) -> click.Command:
    ctx = click.Context(cli)
    found: Any = cli
    for name in path.split():
        found = found.get_command(ctx, name)
    return found


def faces() -> dict[str, dict[str, Any]]:
    """Every command's parameters by name, with how click parses each."""
    return {path: {p.name or "": _param(p) for p in command(path).params if p.name != "help"}
            for path in COMMANDS}


if __name__ == "__main__":
    REFERENCE.write_text(json.dumps(faces(), indent=1, sort_keys=True) + "\n")
