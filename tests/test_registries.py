"""Registries instead of branches: a dataset kind and an output format are one object and one
registration each, and every face runs a prepare by the same rules (retirement, ``--resume``).

A kind and a format are registered here from outside the package, as a user's plugin would be,
and taken through the public faces: ``imgprep.convert``/``prepare``, the Processing job, the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imgfactory
import numpy as np
import pytest

import imgprep
from imgprep import outputs
from imgprep.convert import ConvertOptions
from imgprep.errors import UsageError
from imgprep.formats.dataset import ListRef
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.outputs.base import OutputFormat
from imgprep.packing.packer import PackOptions, list_ref
from imgprep.plan import PrepareRequest, prepare
from imgprep.processing import Cluster, Job, run_job
from imgprep.sources import registry
from imgprep.sources.loaded import ClassInfo, Dataset
from imgprep.sources.registry import IMAGE_ROOT, DefaultSplit, Kind
from imgprep.storage.stores import Storage

CLASSES = ["ant", "bee"]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def options(**kw: Any) -> PackOptions:
    return PackOptions(num_workers=1, quiet=True, progress=False, storage=Storage(), **kw)


# --------------------------------------------------------------------------- a kind from outside


def load_csv(path: str, *, classes: list[str] | None = None) -> Dataset:
    """A toy source: ``class,relative/path`` per line; the images live under --image-root."""
    rows = [line.split(",", 1) for line in Path(path).read_text().splitlines() if line]
    names = list(classes) if classes else sorted({name for name, _ in rows})
    return Dataset(kind="csvtoy", origin=path, classes=[ClassInfo(n) for n in names],
                   paths=[rel for _, rel in rows], labels=np.asarray([names.index(n) for n, _ in rows]))


@pytest.fixture
def csv_kind() -> Iterator[Kind]:
    kind = registry.register(Kind("csvtoy", load_csv, "CSV file", options=("classes",), image_root=IMAGE_ROOT,
                                  default_split=DefaultSplit(fractions=(("train", 0.5), ("val", 0.5)))))
    yield kind
    registry.KINDS.pop("csvtoy")


@pytest.fixture
def csv_data(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "images"
    found = imgfactory.class_tree(root, CLASSES, 4)
    table = tmp_path / "data.csv"
    table.write_text("".join(f"{f.parent.name},{f.relative_to(root).as_posix()}\n" for f in found))
    return table, root


def test_a_registered_kind_converts_with_its_own_split_default_and_options(csv_kind, csv_data, tmp_path) -> None:
    table, _ = csv_data
    result = imgprep.convert("csvtoy", table, tmp_path / "lists", classes=["bee", "ant"], dedup="off")
    assert {name: len(items) for name, items in result.lists.items()} == {"train": 4, "val": 4}
    assert [c.name for c in result.dataset.classes] == ["bee", "ant"]
    assert (tmp_path / "lists" / "train.lst").is_file() and (tmp_path / "lists" / "classes.json").is_file()
    with pytest.raises(UsageError, match="--leaf-classes cannot be used with csvtoy data"):
        imgprep.convert("csvtoy", table, tmp_path / "other", leaf_classes=True)
    assert "csvtoy" in registry.names()


def test_a_registered_kind_prepares_alike_through_the_api_and_the_processing_job(
    csv_kind, csv_data, tmp_path: Path
) -> None:
    table, root = csv_data
    with pytest.raises(UsageError, match="prepare csvtoy needs --image-root"):
        imgprep.prepare("csvtoy", table, tmp_path / "nothing", resize=24, dedup="off")
    api = tmp_path / "api"
    imgprep.prepare("csvtoy", table, api, image_root=root, resize=24, num_workers=1, quiet=True, dedup="off")
    job = tmp_path / "job"
    run_job(Job("prepare", str(job), TransformSpec(resize=24), options(), kind="csvtoy", input=str(table),
                image_root=str(root), convert=ConvertOptions(dedup="off")), Cluster(opt_ml=str(tmp_path / "ml")))
    assert files(job) == files(api)
    assert imgprep.verify(api / "train").ok


def test_an_unknown_kind_is_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown dataset kind 'nope' \\(one of folders, caltech, coco"):
        imgprep.convert("nope", tmp_path, tmp_path / "out")


# --------------------------------------------------------------------------- a format from outside


@dataclass
class Written:
    records: int
    outputs: list[str]
    skipped: int = 0
    skipped_items: list[Any] = field(default_factory=list)

    def format(self) -> str:
        return f"{self.records} paths"


class PathsFormat(OutputFormat):
    """A toy format: each split as ``<split>.paths`` (its items' paths, one a line)."""

    name = "paths"
    given: list[tuple[Any, PackOptions]] = []  # noqa: RUF012  (the Store and options each split was handed)

    def write_split(self, items: Collection[LstItem], source: Any, output: str, spec: TransformSpec,
                    options: PackOptions, *, storage: Any, before_publish: Callable[[], None] | None = None) -> Written:
        self.given.append((storage, options))
        if before_publish is not None:
            before_publish()
        target = output + ".paths"
        storage.write_text(target, "".join(f"{it.path}\n" for it in items))
        storage.write_text(output + ".ref", list_ref(list(items)).sha256)
        return Written(len(items), [target])

    def earlier_list(self, output: str, storage: Any) -> ListRef | None:
        ref = output + ".ref"
        return ListRef(name=ref, sha256=storage.read_text(ref), entries=0) if storage.exists(ref) else None

    def retire(self, output: str, storage: Any) -> None:
        for suffix in (".paths", ".ref"):
            storage.delete(output + suffix)

    def verify(self, path: str, storage: Any, **options: Any) -> Any:
        raise UsageError("paths are not checked")

    def inspect(self, path: str, storage: Any, **options: Any) -> Any:
        raise UsageError("paths are not inspected")


@pytest.fixture
def paths_format() -> Iterator[OutputFormat]:
    yield outputs.register(PathsFormat())
    outputs.FORMATS.pop("paths")


def test_a_registered_format_is_written_retired_and_resumed_by_the_prepare_executor(
    paths_format, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    imgfactory.class_tree(tree, CLASSES, 4)
    out = tmp_path / "out"

    def run(split: str, **kw: Any) -> None:
        request = PrepareRequest("folders", str(tree), str(out), ConvertOptions(split=split, dedup="off"),
                                 TransformSpec(), options(**kw), output_format="paths")
        prepare(request, Storage())

    run("train=0.5,val=0.25,test=0.25")
    assert {"train.paths", "val.paths", "test.paths", "train.lst", "hyperparameters.json"} <= set(files(out))
    run("train=0.5,val=0.5")
    assert not [name for name in files(out) if name.startswith("test")]  # the format's retire() ran
    with pytest.raises(UsageError, match="cannot resume: the earlier prepare split the data differently"):
        run("train=0.75,val=0.25", resume=True)
    with pytest.raises(UsageError, match="unknown output format 'tiff' \\(one of recordio, images, paths\\)"):
        outputs.get("tiff")


def test_a_format_is_handed_the_store_on_its_own(paths_format, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    imgfactory.class_tree(tree, CLASSES, 4)
    store = Storage()
    paths_format.given.clear()
    request = PrepareRequest("folders", str(tree), str(tmp_path / "out"),
                             ConvertOptions(split="train=0.5,val=0.5", dedup="off"), TransformSpec(),
                             PackOptions(num_workers=1, quiet=True, progress=False), output_format="paths")
    prepare(request, store)
    assert [split_store for split_store, _ in paths_format.given] == [store, store]
    assert all(split_options.storage is None for _, split_options in paths_format.given)


# --------------------------------------------------------------------------- one executor, every face


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    imgfactory.class_tree(root, CLASSES, 4)
    return root


def _job(out: Path, tree: Path, seed: int, **kw: Any) -> Job:
    return Job("prepare", str(out), TransformSpec(resize=24), options(**kw), kind="folders", input=str(tree),
               convert=ConvertOptions(split="train=0.5,val=0.5", seed=seed, dedup="off"))


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from imgprep.cli.main import main; main()", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=dict(os.environ),
                          timeout=300)


def test_the_processing_job_refuses_a_resume_that_split_differently_as_the_cli_does(tree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_job(_job(out, tree, seed=1), Cluster(opt_ml=str(tmp_path / "ml")))
    before = files(out)
    cli = _cli("prepare", "folders", tree, "-o", out, "--split", "train=0.5,val=0.5", "--seed", "2", "--dedup", "off",
               "--resize", "24", "-j", "1", "-q", "--resume")
    assert cli.returncode == 2
    with pytest.raises(UsageError) as job:
        run_job(_job(out, tree, seed=2, resume=True), Cluster(opt_ml=str(tmp_path / "ml")))
    assert cli.stderr.strip() == f"imgprep: error: {job.value.message}"
    assert "cannot resume: the earlier prepare split the data differently" in job.value.message
    assert files(out) == before  # refused before anything was written


def test_a_resumed_processing_job_retires_the_old_generation_as_prepare_does(tree, tmp_path: Path) -> None:
    """Every split already complete (nothing to publish): the old generation's third split still goes."""
    runs = {}
    for face in ("cli", "job"):
        out = tmp_path / face
        run_job(_job(out, tree, seed=1), Cluster(opt_ml=str(tmp_path / "ml")))
        for name in ("test.lst", "test.rec", "test.idx"):  # left by an older three-way prepare
            (out / name).write_bytes((out / name.replace("test", "train")).read_bytes())
        if face == "cli":
            done = _cli("prepare", "folders", tree, "-o", out, "--split", "train=0.5,val=0.5", "--seed", "1",
                        "--dedup", "off", "--resize", "24", "-j", "1", "-q", "--resume")
            assert done.returncode == 0, done.stderr
        else:
            run_job(_job(out, tree, seed=1, resume=True), Cluster(opt_ml=str(tmp_path / "ml")))
        runs[face] = files(out)
    assert not [name for name in runs["job"] if name.startswith("test")]
    assert runs["job"] == runs["cli"]


def test_the_processing_job_writes_a_registered_format_on_one_host_and_refuses_it_on_two(
    paths_format, tree, tmp_path: Path
) -> None:
    convert = ConvertOptions(split="train=0.5,val=0.5", dedup="off")
    cli_like = tmp_path / "prepare"
    prepare(PrepareRequest("folders", str(tree), str(cli_like), convert, TransformSpec(), options(),
                           output_format="paths"), Storage())
    job = tmp_path / "job"
    run_job(Job("prepare", str(job), TransformSpec(), options(), kind="folders", input=str(tree), convert=convert,
                output_format="paths"), Cluster(opt_ml=str(tmp_path / "ml")))
    assert files(job) == files(cli_like) and "train.paths" in files(job)
    with pytest.raises(UsageError, match="the paths format is written on one host"):
        run_job(Job("prepare", str(tmp_path / "two"), TransformSpec(), options(), kind="folders", input=str(tree),
                    convert=convert, output_format="paths"),
                Cluster(opt_ml=str(tmp_path / "ml"), num_parts=2, part_index=0, run_id="r"))
