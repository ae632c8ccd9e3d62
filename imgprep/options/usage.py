"""click's usage errors in imgprep's one style: ``imgprep: error: <what>`` on one line, with the
command's usage as a short hint (not click's ``Error: …`` / ``Usage: …`` / ``Try …`` block)."""

from __future__ import annotations

import re

import click


def reword(exc: click.ClickException) -> str:
    """One line: what is wrong, then the command's usage and where its help is."""
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
