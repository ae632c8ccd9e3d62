"""What an option is: one declaration from which its click parameter, its API check and its
Processing config key are made (:mod:`imgprep.options.table` holds them all)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from imgprep.errors import UsageError
from imgprep.formats import typecheck
from imgprep.options.types import ByteSize, Choice, Size2D


@dataclass(frozen=True)
class Option:
    """One option of one or more commands.

    ``decls`` are click's (``("-j", "--num-workers")``; an identifier names the parameter, as in
    click).  ``value`` is ``int``, ``float``, ``str``, ``bool`` (a flag), ``"bytes"``, ``"WxH"`` or a
    tuple of choices; ``low``/``high`` bound numbers.  ``group`` says which typed object the value
    goes to (None: the command takes it by name); ``field`` is its name there and the API keyword
    when it differs from the parameter; ``parse`` turns the command-line value into the field's.
    ``kinds``: the dataset kinds it serves (per-kind help; source options learn theirs from
    :mod:`imgprep.sources`).
    """

    decls: tuple[str, ...]
    help: str = ""
    value: Any = str
    default: Any = None
    group: str | None = None
    field: str | None = None
    low: float | None = None
    high: float | None = None
    parse: Callable[[Any], Any] | None = None
    metavar: str | None = None
    envvar: str | None = None
    show_default: bool = False
    required: bool = False
    argument: bool = False
    nargs: int = 1
    multiple: bool = False
    kinds: tuple[str, ...] = ()
    bare_minimum: int = 0  # "bytes": the smallest number accepted without a unit
    aliases: tuple[tuple[str, str], ...] = ()  # choices: old spellings still taken, not shown
    unset: Any = None  # the field's value when the option is not given (resize=0), taken from Python too
    cli: bool = True  # False: a keyword of the API only (progress=, chunk_size=), no command-line flag
    id: str | None = None  # the table's key, where two commands' options share a parameter name

    @property
    def table_key(self) -> str:
        return self.id or self.name

    @property
    def name(self) -> str:
        """The parameter's name, as click derives it."""
        named = [d for d in self.decls if d.isidentifier()]
        if named:
            return named[0]
        flags = [d.split("/")[0] for d in self.decls]
        longest = max(flags, key=lambda d: (d.startswith("--"), len(d)))
        return longest.lstrip("-").replace("-", "_").lower()

    @property
    def key(self) -> str:
        """The typed object's field and the API keyword."""
        return self.field or self.name

    @property
    def flag_name(self) -> str:
        """The long flag without dashes, underscored (a config file's other spelling)."""
        longs = [d.split("/")[0] for d in self.decls if d.startswith("--")]
        return longs[0][2:].replace("-", "_") if longs else self.name

    def click_type(self) -> Any:
        if isinstance(self.value, tuple):
            return Choice(list(self.value), dict(self.aliases)) if self.aliases else click.Choice(list(self.value))
        if self.value == "bytes":
            return ByteSize(self.bare_minimum)
        if self.value == "WxH":
            return Size2D()
        if self.value in (int, float) and (self.low is not None or self.high is not None):
            ranged = click.IntRange if self.value is int else click.FloatRange
            return ranged(self.low, self.high)
        return None if self.value in (str, bool) else self.value

    def decorator(self) -> Callable[[Any], Any]:
        """The click parameter."""
        if self.argument:
            required = self.required if self.nargs == -1 else None  # None: click's rule (no default: needed)
            return click.argument(*self.decls, type=self.click_type(), metavar=self.metavar, nargs=self.nargs,
                                  required=required)
        extra: dict[str, Any] = {"is_flag": True} if self.value is bool and "/" not in self.decls[0] else {}
        if self.default is not None or self.value is bool:  # click counts a None default as given
            extra["default"] = self.default
        return click.option(*self.decls, type=self.click_type(), help=self.help,
                            metavar=self.metavar, envvar=self.envvar, show_default=self.show_default,
                            required=self.required, multiple=self.multiple, **extra)

    def from_cli(self, value: Any) -> Any:
        return self.parse(value) if self.parse is not None and value is not None else value

    def check(self, value: Any) -> Any:
        """A value given from Python, refused where the command line would refuse it (None: not given)."""
        if value is None:
            return None
        value = self._typed(value)
        if self.unset is not None and value == self.unset:
            return value
        if isinstance(self.value, tuple):
            allowed = [self.from_cli(c) for c in self.value]
            if value not in allowed:
                raise UsageError(f"{self.key} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        self._in_range(value)
        return value

    def _typed(self, value: Any) -> Any:
        if self.value in (int, "bytes"):
            return typecheck.integer(self.key, value)
        if self.value is float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise UsageError(f"{self.key} must be a number, got {value!r} ({type(value).__name__})")
        if self.value is bool:
            typecheck.flag(self.key, value)
        return value

    def _in_range(self, value: Any) -> None:
        low = 0 if self.value == "bytes" and self.low is None else self.low
        if low is not None and value < low:
            raise UsageError(f"{self.key} must {'not be negative' if low == 0 else f'be at least {low}'}, got {value}")
        if self.high is not None and value > self.high:
            raise UsageError(f"{self.key} must be at most {self.high}, got {value}")
