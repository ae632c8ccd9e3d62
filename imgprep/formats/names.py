"""Names people type and names that look alike: close-match suggestions, identical-looking classes.

Pure functions on strings.  A misspelt class or category name gets the nearest real names
(``difflib``, the standard library's ratio); two class names that are the same letters in
another Unicode normalisation (NFC ``é`` against NFD ``e`` + combining accent, which macOS and
Linux file systems hand out differently) or that differ only in case would become two classes
a person cannot tell apart, so they are found and named.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence

SUGGESTIONS = 3


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'a' or 'b'?)`` for the closest of ``choices``, or ``""`` when none is close."""
    options = list(dict.fromkeys(str(c) for c in choices))
    folded = {c.casefold(): c for c in options}
    near = difflib.get_close_matches(word.casefold(), list(folded), n=SUGGESTIONS, cutoff=0.6)
    if not near:
        return ""
    names = [repr(folded[n]) for n in near]
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f" (did you mean {said}?)"


def look_alike_key(name: str) -> str:
    """What two names that look the same share: NFC form, case folded."""
    return unicodedata.normalize("NFC", name).casefold()


def look_alikes(names: Sequence[str]) -> list[list[str]]:
    """Groups of distinct names that look the same (same letters in another Unicode
    normalisation, or differing only in case), each in input order; groups in input order."""
    groups: dict[str, list[str]] = {}
    for name in names:
        members = groups.setdefault(look_alike_key(name), [])
        if name not in members:
            members.append(name)
    return [g for g in groups.values() if len(g) > 1]


def describe_look_alikes(groups: Sequence[Sequence[str]], shown: int = 3) -> str:
    """One line naming identical-looking class names (their code points told apart by ``ascii``)."""
    parts = [" = ".join(ascii(n) for n in group) for group in groups[:shown]]
    more = f" …and {len(groups) - shown} more" if len(groups) > shown else ""
    return (f"{len(groups)} group(s) of class names look identical but are different strings (Unicode "
            f"normalisation NFC/NFD or case only): {'; '.join(parts)}{more}; each is a separate class — "
            "rename one of each group if they are meant to be different, or merge them if they are one class")
