"""The value types of options that click does not have: byte sizes and WIDTHxHEIGHT."""

from __future__ import annotations

import re
from typing import Any

import click

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


class ByteSize(click.ParamType):
    """``1000000``, ``64MiB``, ``1.5GB``.

    ``bare_minimum``: a number without a unit below it is refused, since ``--shard-size 1`` was
    meant as 1 GiB far more often than as one byte (one shard per record); a unit says "bytes" plainly.
    """

    name = "bytes"

    def __init__(self, bare_minimum: int = 0) -> None:
        self.bare_minimum = bare_minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):  # a config file's number: bytes, held as text is
            value = str(value)
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNITS:
            self.fail(f"{value!r} is not a size (examples: 500000000, 512MiB, 1GB)", param, ctx)
        number = int(float(match.group(1)) * _UNITS[unit])
        if not match.group(2) and 0 < number < self.bare_minimum:  # 0: no limit, as before
            self.fail(f"{value!r} is {number} byte(s): give a unit (e.g. {match.group(1)}GiB, 512MiB) or at least "
                      f"{self.bare_minimum} bytes", param, ctx)
        return number


class Size2D(click.ParamType):
    """``348x348``."""

    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*([0-9]+)\s*[xX×]\s*([0-9]+)\s*", str(value))
        if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            self.fail(f"{value!r} is not WIDTHxHEIGHT (example: 348x348)", param, ctx)
        return int(match.group(1)), int(match.group(2))


class Choice(click.Choice):
    """click's choice, also taking old spellings (``.jpg``) that ``--help`` no longer lists."""

    def __init__(self, choices: list[str], aliases: dict[str, str]) -> None:
        super().__init__(choices)
        self.aliases = aliases

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(self.aliases.get(value, value), param, ctx)
