"""click's usage errors in imgprep's one style: ``imgprep: error: <what>`` on one line, with the
command's usage as a short hint (not click's ``Error: …`` / ``Usage: …`` / ``Try …`` block)."""

from __future__ import annotations

import re

import click

# click >= 8.2 raises it for a group run without its command (8.1 printed the help and exited 0)
_NO_ARGS: type | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())


def reword(exc: click.ClickException) -> str:
    """One line: what is wrong, then the command's usage and where its help is."""
    if isinstance(exc, _NO_ARGS):  # its message is the whole help page
        return _missing_command(exc.ctx)
    text = " ".join(exc.format_message().split())
    text = re.sub(r"^Invalid value for '([^']+)': ", r"\1: ", text)
    text = re.sub(r"'(-[^']*)'", r"\1", text)  # '--root' -> --root
    text = re.sub(r"Choose from: ([^.]*?)\.?$", lambda m: "choose from " + m.group(1).replace(" ,", ","), text)
    text = text.rstrip(".")
    text = text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is None:
        return text
    usage = " ".join(ctx.command.collect_usage_pieces(ctx))
    return f"{text} (usage: {ctx.command_path} {usage}; see {ctx.command_path} --help)"


def _missing_command(ctx: click.Context) -> str:
    """A group run without its command: the commands it has, not its help page squashed onto one line."""
    names = ctx.command.list_commands(ctx) if isinstance(ctx.command, click.Group) else []
    usage = " ".join(ctx.command.collect_usage_pieces(ctx))
    return (f"missing command: choose from {', '.join(names)} "
            f"(usage: {ctx.command_path} {usage}; see {ctx.command_path} --help)")
