"""Sum pytest's JUnit XML reports, refuse unexplained skips, print the closing count line.

    python scripts/test_report.py --allowlist tests/skip_allowlist.txt REPORT.xml [REPORT.xml ...]

A skipped test is a test that did not run: every skip must match an allowlist entry (a test id
prefix, a tab, the reason it may skip), or this exits 1 naming it.  The last line printed is
``tests: N passed, N failed, N skipped`` (failed counts errors too), which CI reads.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def read_allowlist(path: Path) -> list[tuple[str, str]]:
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test, sep, reason = (part.strip() for part in line.partition("\t"))
        if not sep or not reason:
            sys.exit(f"{path}:{number}: an entry is 'TEST-ID-PREFIX<TAB>reason'")
        entries.append((test, reason))
    return entries


def outcomes(report: Path) -> list[tuple[str, str, str]]:
    """``(test id, outcome, message)`` for every test case in one JUnit XML file."""
    out = []
    for case in ET.parse(report).iter("testcase"):
        module = (case.get("classname") or "").replace(".", "/")
        test_id = f"{module}.py::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag != "skipped" else "skipped"
                message = child.get("message") or ""
                break
        out.append((test_id, outcome, message))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allowlist", type=Path, required=True)
    ap.add_argument("reports", type=Path, nargs="+")
    args = ap.parse_args(argv)
    allowed = read_allowlist(args.allowlist)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    unexplained = []
    for report in args.reports:
        if not report.exists():
            print(f"test_report: {report} is missing (pytest did not run to the end)", file=sys.stderr)
            counts["failed"] += 1
            continue
        for test_id, outcome, message in outcomes(report):
            counts[outcome] += 1
            if outcome == "skipped" and not any(test_id.startswith(prefix) for prefix, _ in allowed):
                unexplained.append(f"{test_id}: {message}")
    for line in unexplained:
        print(f"test_report: skipped and not on {args.allowlist}: {line}", file=sys.stderr)
    print(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if unexplained or counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
