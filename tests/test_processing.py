"""The Processing job on local disk: platform config, shares, markers, joins, failures.

Multi-host runs here call the job in-process one host after another (the joiner last, so the
others' markers already exist); tests/test_processing_s3.py runs real concurrent processes
against a loopback S3 server.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest
from click.testing import CliRunner
from packhelp import PackOptions, pack

import imgprep
from imgprep.convert import ConvertOptions
from imgprep.errors import BadRecordsError, FormatError, UsageError
from imgprep.formats.lst import LstItem, read_lst
from imgprep.formats.recordio import RecordReader
from imgprep.imaging.spec import TransformSpec
from imgprep.options import PACK
from imgprep.processing import Cluster, Job, run_job
from imgprep.processing.config import load_job_config, load_options_file, write_message
from imgprep.processing.join import JobFailedError, plan_order, wait_for_hosts
from imgprep.processing.partition import (
    contiguous_share,
    local_share,
    mirror_listing,
    relative_keys,
    slice_bounds,
)
from imgprep.sources.folders import load_folders
from imgprep.splits.stream import ListStream
from imgprep.storage.local import LocalStore
from imgprep.storage.stores import Storage

SPLIT = "train=0.5,val=0.5"
CLASSES = ["cat", "dog", "eel", "fox"]


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (hidden work folders included, to catch leftovers)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def opt_ml(root: Path, host: str | None = None, hosts: list[str] | None = None, job: dict | None = None) -> str:
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    if host is not None:
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
    if job is not None:
        (config / "processingjobconfig.json").write_text(json.dumps(job))
    return str(root)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    imgfactory.class_tree(root, CLASSES, 6, png_every=5)
    return root


def spec() -> TransformSpec:
    return TransformSpec(resize=24)


def options(**kw: object) -> PackOptions:
    return PackOptions(num_workers=1, quiet=True, progress=False, storage=Storage(), **kw)


# --------------------------------------------------------------------------- platform config


def test_job_config_and_message(tmp_path: Path) -> None:
    job = {
        "ProcessingJobName": "prep-1",
        "ProcessingInputs": [
            {"InputName": "data", "S3Input": {"LocalPath": "/opt/ml/processing/input/data",
                                              "S3Uri": "s3://b/caltech", "S3DataDistributionType": "ShardedByS3Key"}},
            {"InputName": "code", "S3Input": {"LocalPath": "/opt/ml/processing/input/code", "S3Uri": "s3://b/c"}},
        ],
    }
    root = opt_ml(tmp_path, "algo-2", ["algo-1", "algo-2", "algo-3"], job)
    config = load_job_config(root)
    assert (config.current_host, config.host_index, len(config.hosts), config.job_name) == ("algo-2", 1, 3, "prep-1")
    found = config.input_for("/opt/ml/processing/input/data/256_ObjectCategories")
    assert found is not None and (found.name, found.distribution) == ("data", "ShardedByS3Key")
    assert config.input_for("/opt/ml/processing/input/code").distribution == "FullyReplicated"
    assert config.input_for("/opt/ml/processing/input/database") is None

    (tmp_path / "config" / "resourceconfig.json").write_text('{"current_host": "x", "hosts": ["a"]}')
    with pytest.raises(FormatError, match="not in hosts"):
        load_job_config(root)
    assert load_job_config(str(tmp_path / "nothing")).hosts == ()

    path = write_message(root, "first line\nsecond — ünïcode " + "é" * 2000)
    text = Path(path).read_text(encoding="utf-8")
    assert text.count("\n") == 1 and text.startswith("first line second")
    assert len(text.rstrip("\n").encode("utf-8")) <= 1024


def test_options_file(tmp_path: Path) -> None:
    good = tmp_path / "job.json"
    good.write_text('{"command": "prepare", "train-per-class": 3, "resize": 256}')
    assert load_options_file(str(good)) == {"command": "prepare", "train_per_class": 3, "resize": 256}
    yaml = pytest.importorskip("yaml")
    doc = tmp_path / "job.yaml"
    doc.write_text(yaml.safe_dump({"command": "pack", "root": "imgs"}))
    assert load_options_file(str(doc)) == {"command": "pack", "root": "imgs"}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(FormatError, match="mapping"):
        load_options_file(str(bad))


# --------------------------------------------------------------------------- shares


@pytest.mark.parametrize("total,parts", [(0, 3), (2, 3), (10, 3), (11, 4), (100, 7)])
def test_slices_cover_the_list_in_order(total: int, parts: int) -> None:
    items = list(range(total))
    joined = [x for i in range(parts) for x in contiguous_share(items, parts, i)]
    assert joined == items
    sizes = [len(contiguous_share(items, parts, i)) for i in range(parts)]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(UsageError):
        slice_bounds(total, parts, parts)


def test_local_share_and_mirror(tree: Path, tmp_path: Path) -> None:
    paths = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    keys = ["pre/fix/" + p for p in paths] + ["pre/fix/", "pre/fix/../evil.jpg", "pre/other/x.jpg"]
    assert relative_keys(keys, "pre/fix") == paths
    mirror = tmp_path / "mirror"
    assert mirror_listing(paths, str(mirror)) == len(paths)
    real, fake = load_folders(str(tree)), load_folders(str(mirror))
    assert real.paths == fake.paths and real.labels.tolist() == fake.labels.tolist()
    assert [c.name for c in real.classes] == [c.name for c in fake.classes]
    items = [LstItem(i, (0.0,), p) for i, p in enumerate(paths)]
    some = tmp_path / "some"
    for p in paths[::3]:
        imgfactory.write(some / p, b"x")
    assert [it.path for it in local_share(items, str(some))] == paths[::3]


def test_plan_order_accounts_for_every_record() -> None:
    from imgprep.processing.join import _Part

    items = [LstItem(k, (0.0,), f"{k}.jpg") for k in (5, 1, 9, 3)]
    a = _Part("a.rec", [(5, 0), (9, 8)], 16)
    b = _Part("b.rec", [(1, 0)], 8)
    order, dropped = plan_order(items, [a, b], [[3, "3.jpg", "broken"]], "out")
    assert order == [(0, 0), (1, 0), (0, 1)] and [s.index for s in dropped] == [3]
    with pytest.raises(JobFailedError, match=r"record 3 \(3.jpg\) was packed by no host"):
        plan_order(items, [a, b], [], "out")
    with pytest.raises(FormatError, match="two hosts"):
        plan_order(items, [a, _Part("c.rec", [(5, 0), (1, 8)], 16)], [[3, "3.jpg", "x"]], "out")
    with pytest.raises(FormatError, match="not in the list"):
        plan_order(items[:3], [a, b], [[3, "3.jpg", "x"]], "out")


# --------------------------------------------------------------------------- whole jobs, local disk


def run_hosts(job_for: callable, count: int, tmp_path: Path, **cluster: object) -> list:
    """Hosts 1..n-1 pack (no join), then host 0 packs and joins; returns the results."""
    results = []
    for index in [*range(1, count), 0]:
        root = opt_ml(tmp_path / f"host{index}")
        results.append(run_job(job_for(index), Cluster(opt_ml=root, num_parts=count, part_index=index,
                                                       run_id="t1", join="auto" if index == 0 else "no",
                                                       poll=0.01, **cluster)))
    return results


def test_prepare_job_fully_replicated_matches_one_host(tree: Path, tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    imgprep.prepare("folders", str(tree), str(reference), spec=spec(), options=options(), split=SPLIT, seed=7)
    out = tmp_path / "job"
    results = run_hosts(lambda i: Job("prepare", str(out), spec(), options(), kind="folders", input=str(tree),
                                      convert=ConvertOptions(split=SPLIT, seed=7)), 3, tmp_path)
    assert files(out) == files(reference)
    assert json.loads((out / "train.dataset.json").read_text())["num_classes"] == len(CLASSES)  # the join states it
    joined = results[-1].joined
    assert joined["train"].concatenated and joined["train"].records == 12
    # one host: the job is `prepare` itself
    single = tmp_path / "single"
    run_job(Job("prepare", str(single), spec(), options(), kind="folders", input=str(tree),
                convert=ConvertOptions(split=SPLIT, seed=7)), Cluster(opt_ml=opt_ml(tmp_path / "one")))
    assert files(single) == files(reference)


def make_lists(tree: Path, tmp_path: Path) -> tuple[Path, list[LstItem]]:
    lists = tmp_path / "lists"
    imgprep.convert("folders", str(tree), str(lists), split="train=1.0", seed=3)
    all_lst = lists / "all.lst"
    (lists / "train.lst").rename(all_lst)
    return all_lst, read_lst(all_lst)


def shard_inputs(tree: Path, items: list[LstItem], tmp_path: Path, count: int) -> list[Path]:
    """ShardedByS3Key on disk: every image copied to exactly one host's input folder, scattered."""
    roots = [tmp_path / f"input{i}" for i in range(count)]
    rng = random.Random(11)
    for item in items:
        target = roots[rng.randrange(count)] / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tree / item.path, target)
    return roots


def test_pack_job_sharded_matches_one_host(tree: Path, tmp_path: Path) -> None:
    lst, items = make_lists(tree, tmp_path)
    (tree / items[4].path).write_bytes(imgfactory.not_an_image())  # skipped, reported by its host
    reference = tmp_path / "ref" / "all"
    # as a one-host pack of the list file: its classes from the classes.json beside it, the list named by its file
    pack(ListStream([str(lst)], Storage()), str(tree), str(reference), spec(),
         options(num_classes=len(CLASSES), class_names=tuple(CLASSES)))
    roots = shard_inputs(tree, items, tmp_path, 3)
    out = tmp_path / "job" / "all"
    results = run_hosts(lambda i: Job("pack", str(out), spec(), options(), lists=(str(lst),), root=str(roots[i])),
                        3, tmp_path, distribution="ShardedByS3Key")
    got, want = files(out.parent), files(reference.parent)
    # The report names the image where its host read it; on SageMaker every host mounts the same path.
    holder = next(r for r in roots if (r / items[4].path).exists())
    report = got.pop("all.skipped.tsv").decode().replace(str(holder), "ROOT")
    assert report == want.pop("all.skipped.tsv").decode().replace(str(tree), "ROOT")
    assert got == want
    assert not results[-1].joined["all"].concatenated  # interleaved parts: the k-way merge ran
    with RecordReader(f"{out}.rec", f"{out}.idx") as reader:
        keys = reader.keys
    assert sorted(keys) == sorted(it.index for it in items if it.index != items[4].index)


def test_a_failing_host_fails_the_job(tree: Path, tmp_path: Path) -> None:
    lst, items = make_lists(tree, tmp_path)
    (tree / items[-1].path).write_bytes(imgfactory.not_an_image())  # in the last host's slice
    out = tmp_path / "job" / "all"

    def job(i: int) -> Job:
        return Job("pack", str(out), spec(), options(strict=True), lists=(str(lst),), root=str(tree))

    host2 = opt_ml(tmp_path / "host2")
    with pytest.raises(BadRecordsError):
        run_job(job(2), Cluster(opt_ml=host2, num_parts=3, part_index=2, run_id="f", join="no"))
    assert "--strict" in (Path(host2) / "output" / "message").read_text()
    run_job(job(1), Cluster(opt_ml=opt_ml(tmp_path / "host1"), num_parts=3, part_index=1, run_id="f", join="no"))
    host0 = opt_ml(tmp_path / "host0")
    with pytest.raises(JobFailedError, match=r"host part-2 \(part 3 of 3\) failed: .*--strict"):
        run_job(job(0), Cluster(opt_ml=host0, num_parts=3, part_index=0, run_id="f", poll=0.01))
    message = (Path(host0) / "output" / "message").read_text()
    assert message.startswith("host part-2 (part 3 of 3) failed") and message.count("\n") == 1
    assert not (out.parent / "all.rec").exists() and not (out.parent / "all.idx").exists()


def test_a_vanished_host_times_out(tree: Path, tmp_path: Path) -> None:
    lst, _ = make_lists(tree, tmp_path)
    out = tmp_path / "job" / "all"
    host0 = opt_ml(tmp_path / "host0")
    with pytest.raises(JobFailedError, match="waiting for part-1, part-2"):
        run_job(Job("pack", str(out), spec(), options(), lists=(str(lst),), root=str(tree)),
                Cluster(opt_ml=host0, num_parts=3, part_index=0, run_id="v", join_timeout=0.05, poll=0.01))
    assert "gave up" in (Path(host0) / "output" / "message").read_text()
    assert not list(out.parent.glob("all.*"))


def test_wait_returns_markers_in_host_order(tmp_path: Path) -> None:
    for i in (1, 0):
        (tmp_path / f"host-{i:05d}.done").write_text(json.dumps({"index": i}))
    assert [m["index"] for m in wait_for_hosts(str(tmp_path), 2, LocalStore(), poll=0.01, timeout=1)] == [0, 1]


def test_usage_rules(tree: Path, tmp_path: Path) -> None:
    lst, _ = make_lists(tree, tmp_path)
    root = opt_ml(tmp_path / "optml", "algo-1", ["algo-1", "algo-2"], {"ProcessingJobName": "j"})
    job = Job("pack", str(Path(root) / "processing" / "output" / "data" / "all"), spec(), options(),
              lists=(str(lst),), root=str(tree))
    with pytest.raises(UsageError, match="per host"):
        run_job(job, Cluster(opt_ml=root))
    with pytest.raises(UsageError, match="--run-id"):
        run_job(Job("pack", str(tmp_path / "o"), spec(), options(), lists=(str(lst),), root=str(tree)),
                Cluster(opt_ml=str(tmp_path / "bare"), num_parts=2, part_index=0))
    with pytest.raises(UsageError, match="--shard-records"):
        run_job(Job("pack", str(tmp_path / "o"), spec(), options(shard_records=2), lists=(str(lst),),
                    root=str(tree)), Cluster(opt_ml=root))


# --------------------------------------------------------------------------- the command line


def test_cli_config_file_and_arguments(tree: Path, tmp_path: Path) -> None:
    from imgprep.processing.command import processing

    reference = tmp_path / "ref"
    imgprep.prepare("folders", str(tree), str(reference), spec=TransformSpec(resize=20), options=options(),
                    split=SPLIT, seed=5)
    config = tmp_path / "job.json"
    out = tmp_path / "out"
    config.write_text(json.dumps({"command": "prepare", "kind": "folders", "input": str(tree), "output": str(out),
                                  "split": SPLIT, "seed": 5, "resize": 20, "num-workers": 1, "quiet": True,
                                  "opt-ml": str(tmp_path / "optml")}))
    result = CliRunner().invoke(processing, ["--config", str(config)])
    assert result.exit_code == 0, result.output
    assert files(out) == files(reference)
    # command-line options win over the file's
    result = CliRunner().invoke(processing, ["--config", str(config), "prepare", "--seed", "6"])
    assert result.exit_code == 0, result.output
    assert (out / "train.lst").read_bytes() != (reference / "train.lst").read_bytes()
    config.write_text(json.dumps({"command": "prepare", "resise": 20}))
    result = CliRunner().invoke(processing, ["--config", str(config)])
    assert isinstance(result.exception, UsageError) and "resise" in str(result.exception)
    assert PACK  # the job takes the pack command's own option groups


def test_module_entrypoint_writes_the_message_for_usage_errors(tmp_path: Path) -> None:
    root = tmp_path / "optml"
    proc = subprocess.run([sys.executable, "-m", "imgprep.processing", "pack", "--opt-ml", str(root), "x.lst"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    message = (root / "output" / "message").read_text(encoding="utf-8")
    assert "--root" in message and message.count("\n") == 1


def test_one_host_prepare_says_its_summary_once(tree: Path, tmp_path: Path) -> None:
    """The conversion's summary waits for the commit, as the CLI's does: one hyperparameters line."""
    lines: list[str] = []
    run_job(Job("prepare", str(tmp_path / "out"), spec(), options(), kind="folders", input=str(tree),
                convert=ConvertOptions(split=SPLIT, seed=7)), Cluster(opt_ml=opt_ml(tmp_path / "ml")),
            echo=lines.append)
    said = [line for line in lines if line.startswith("hyperparameters:")]
    assert len(said) == 1
    assert lines.index(said[0]) > max(i for i, line in enumerate(lines) if line.startswith("packed "))
