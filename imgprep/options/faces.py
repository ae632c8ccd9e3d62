"""Click commands made from the option table: one decorator per command, the typed objects built
once, and per-kind help for the commands that take a dataset KIND."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from imgprep import sources
from imgprep.options.declare import Option
from imgprep.options.table import ALSO, OPTIONS, TARGETS


def given(name: str) -> bool:
    """Whether the user set option ``name`` (on the command line or through its variable)."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


def _refuse_ignored(values: dict[str, Any]) -> None:
    """Options that would be silently ignored are usage errors: the user meant something by them."""
    if given("fit") and not values.get("size"):
        raise click.UsageError("--fit applies to --size WxH only (with --resize the aspect ratio is kept)")
    if values.get("pass_through"):
        ignored = [f"--{n.replace('_', '-')}" for n in ("resize", "size", "fit", "center_crop", "quality",
                                                         "encoding", "color") if given(n)]
        if ignored:
            raise click.UsageError(f"--pass-through stores the files unchanged: {', '.join(ignored)} cannot apply")


def _own_process(values: dict[str, Any]) -> None:
    from imgprep.imaging import native  # here: the native core loads only for a packing run

    native.keep_heap()  # this process is ours: a packing run, not a host application


def _dedup_note(values: dict[str, Any]) -> None:
    if values.get("dedup") == "drop":  # its old name: it never dropped an image, it keeps each group in one split
        click.echo("imgprep: note: --dedup drop is now called --dedup same-split (nothing is dropped: every "
                   "duplicate group is kept in one split)", err=True)


# Checks before a group's object is built that need the command line (what was given).
_BEFORE: dict[str, Callable[[dict[str, Any]], None]] = {
    "transform": _refuse_ignored, "run": _own_process, "dataset": _dedup_note,
}


def _factory(target: str) -> Callable[..., Any]:
    """``module:attr[.attr]`` imported when a command runs (the CLI's start-up loads none of them)."""
    module, _, path = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in path.split("."):
        value = getattr(value, part)
    return value


def chosen(names: Iterable[str]) -> list[Option]:
    """Table keys, or ``@group`` for all of a group's options, as declarations in order."""
    found: list[Option] = []
    for name in names:
        if name.startswith("@"):
            found += [o for o in OPTIONS.values() if o.group == name[1:] and o.cli]
        else:
            found.append(OPTIONS[name])
    return found


def assemble(options: list[Option], build: tuple[str, ...], values: dict[str, Any]) -> dict[str, Any]:
    """The command's keywords: the built groups' objects, the other options by name."""
    groups: dict[str, dict[str, Any]] = {name: {} for name in build}
    for option in options:
        value = option.from_cli(values.pop(option.name))
        homes = [g for g in (option.group, *ALSO.get(option.group or "", ())) if g in groups]
        for home in homes:
            groups[home][option.key] = value
        if not homes:
            values[option.name] = value
    for name in build:
        _BEFORE.get(name, lambda v: None)(groups[name])
        keyword, factory = TARGETS[name]
        # None: not given, so the object's own default (0 shards, the 32MiB checkpoint...) stands
        values[keyword] = _factory(factory)(**{k: v for k, v in groups[name].items() if v is not None})
    return values


def options(*names: str, build: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options ``names`` (table keys or ``@group``) to a command, which receives the objects
    of the groups in ``build`` (``spec``, ``options``, ``convert_options``, ``storage`` ...) and the
    other options by name."""
    declared = chosen(names)

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(**values: Any) -> Any:
            return f(**assemble(declared, build, values))

        for option in reversed(declared):
            wrapper = option.decorator()(wrapper)
        return wrapper

    return decorate


class KindCommand(click.Command):
    """A command whose KIND argument selects its help: ``prepare coco --help`` shows COCO's options first."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["imgprep.kind"] = next((a for a in args if a in kinds()), None)  # before --help prints
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        kind = ctx.meta.get("imgprep.kind")
        served = _served()
        rows: dict[str | None, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is None:
                continue
            only = served.get(param.name or "", ())
            rows.setdefault((kind if kind in only else "other") if only else None, []).append(record)
        if kind is not None and rows.get(kind):
            with formatter.section(f"Options for {kind} data"):
                formatter.write_dl(rows[kind])
        with formatter.section("Options"):
            formatter.write_dl(rows.get(None, []))
        if kind is None:
            for name in kinds():
                mine = [r for p, r in _records(self, ctx) if name in served.get(p, ())]
                if mine:
                    with formatter.section(f"Options for {name} data ({ctx.command_path} {name} --help)"):
                        formatter.write_dl(mine)
        elif rows.get("other"):
            others = ", ".join(r[0].split(" ")[0].rstrip(",") for r in rows["other"])
            formatter.write_paragraph()
            formatter.write_text(f"Other kinds' options (not for {kind}): {others}.")


def _records(command: click.Command, ctx: click.Context) -> list[tuple[str, tuple[str, str]]]:
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    return [(p.name or "", r) for p in options if (r := p.get_help_record(ctx)) is not None]


def kinds() -> tuple[str, ...]:
    return tuple(sources.KINDS)


@functools.cache
def _served() -> Mapping[str, tuple[str, ...]]:
    """Parameter name -> the kinds it serves (absent: every kind)."""
    served = {o.name: o.kinds for o in OPTIONS.values() if o.kinds}
    for option in OPTIONS.values():
        if option.group == "source":
            served[option.name] = tuple(k for k in kinds() if option.key in _source_fields(k))
    return served


def _source_fields(kind: str) -> set[str]:
    """The :class:`SourceOptions` fields a kind takes: its registered ``Kind.options`` where kinds
    are registered objects, else its loader's parameters (by their option names)."""
    try:
        from imgprep.sources import registry  # here: it imports the kind's module (numpy, its loader)
    except ImportError:
        registry = None
    if registry is not None:
        return set(registry.get(kind).options)
    import inspect  # here: the standard library's inspect is slow to import, and only help needs it

    from imgprep.sources import options as source_options

    loader = source_options._loader(kind)
    renamed = {"attribute": "source_attribute", "label_format": "source_label_format"}
    return {renamed.get(p, p) for p in inspect.signature(loader).parameters}
