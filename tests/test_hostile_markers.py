"""A multi-host job's ``.done`` markers are data another machine wrote to shared storage: the
joiner reads the part this job names, never a path a marker chose, and a damaged marker is one
line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_processing import make_lists, opt_ml, options, spec, tree  # noqa: F401 - tree is a fixture

from imgprep.errors import FormatError
from imgprep.processing import Cluster, Job, run_job


def tampered(entry: dict, secret: Path) -> dict[str, object]:
    return {
        "part outside the work folder": {**entry, "part": str(secret.with_suffix(""))},
        "part as a number": {**entry, "part": 5},
        "records not a count": {**entry, "records": "many"},
        "bytes infinite": {**entry, "bytes": float("inf")},
        "skipped row of two": {**entry, "skipped": [[1, "x.jpg"]]},
        "skipped index not a number": {**entry, "skipped": [["x", "x.jpg", "bad"]]},
        "channel not an object": [],
    }


CASES = ["part outside the work folder", "part as a number", "records not a count", "bytes infinite",
         "skipped row of two", "skipped index not a number", "channel not an object"]


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_marker_is_one_line(case: str, tree: Path, tmp_path: Path) -> None:  # noqa: F811
    lst, _ = make_lists(tree, tmp_path)
    out = tmp_path / "job" / "all"

    def job() -> Job:
        return Job("pack", str(out), spec(), options(), lists=(str(lst),), root=str(tree))

    run_job(job(), Cluster(opt_ml=opt_ml(tmp_path / "host1"), num_parts=2, part_index=1, run_id="m", join="no"))
    marker = out.parent / ".imgprep-parts" / "m" / "host-00001.done"
    doc = json.loads(marker.read_text())
    secret = tmp_path / "elsewhere" / "x.dataset.json"
    secret.parent.mkdir()
    secret.write_text("{}")
    doc["channels"]["all"] = tampered(doc["channels"]["all"], secret)[case]
    marker.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"host-00001\.done: completion marker") as caught:
        run_job(job(), Cluster(opt_ml=opt_ml(tmp_path / "host0"), num_parts=2, part_index=0, run_id="m", poll=0.01))
    assert "\n" not in str(caught.value)
    assert not (out.parent / "all.rec").exists()
