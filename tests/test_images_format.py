"""The image format (``train/``, ``validation/``, ``*_lst/*.lst``) on local disk, judged by MXNet's ImageIter."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import imgfactory
import pytest
from packhelp import pack

from imgprep.errors import BadRecordsError
from imgprep.formats import imageset
from imgprep.formats.lst import LstItem, read_lst
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.channels import write_images
from imgprep.packing.packer import PackOptions
from imgprep.storage.stores import Storage

CLASSES = ["cat", "dog", "emu"]


def make_source(root: Path, per_class: int = 4, *, multi: bool = False) -> dict[str, list[LstItem]]:
    files = imgfactory.class_tree(root, CLASSES, per_class, png_every=3)
    items = []
    for i, f in enumerate(files):
        c = CLASSES.index(f.parent.name)
        labels = tuple(float(k == c or (multi and k == (c + i) % 3)) for k in range(3)) if multi else (float(c),)
        items.append(LstItem(100 + i, labels, f.relative_to(root).as_posix()))
    return {"train": items[::2], "val": items[1::2]}


def write(lists: dict[str, list[LstItem]], root: Path, out: Path, spec: TransformSpec, **options: object):
    return write_images(lists, str(root), str(out), spec, PackOptions(storage=Storage(), **options))


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("multi", [False, True], ids=["single-label", "multi-label"])
def test_mxnet_imageiter_reads_both_channels_with_the_lists_labels(mxnet, tmp_path: Path, multi: bool) -> None:
    lists = make_source(tmp_path / "src", multi=multi)
    summaries = write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(size=(40, 32)), num_workers=2)
    out = tmp_path / "out"
    width = 3 if multi else 1
    for split, channel in (("train", "train"), ("val", "validation")):
        lst = out / f"{channel}_lst" / f"{channel}.lst"
        written = read_lst(lst)
        assert [(i.index, i.labels) for i in written] == [(i.index, i.labels) for i in lists[split]]
        got = mxnet.run("imagelist", lst, str(out / channel) + "/", "--data-shape", "3,32,40",
                        "--label-width", width)
        assert [s["labels"] for s in got["samples"]] == [list(i.labels) for i in lists[split]]
        assert summaries[split].channel == channel and summaries[split].records == len(lists[split])
    assert sorted(p.name for p in out.iterdir()) == ["_imgprep", "train", "train_lst", "validation", "validation_lst"]
    assert [p.name for p in (out / "train_lst").iterdir()] == ["train.lst"]


def test_images_are_the_bytes_pack_puts_in_records_and_the_record_checks_them(tmp_path: Path) -> None:
    """One imaging path: every written image is byte for byte the image of pack's record for it,
    and the image-set record names its size, MD5 and pixel size."""
    lists = make_source(tmp_path / "src")
    spec = TransformSpec(resize=24, quality=80)
    write(lists, tmp_path / "src", tmp_path / "out", spec)
    pack(lists["train"], str(tmp_path / "src"), str(tmp_path / "rec" / "train"), spec)
    from imgprep.formats.imagesize import dimensions
    from imgprep.formats.recordio import read_index, unframe, unpack_image_record

    rec = (tmp_path / "rec" / "train.rec").read_bytes()
    offsets = [offset for _, offset in read_index(tmp_path / "rec" / "train.idx")] + [len(rec)]
    packed = [bytes(unpack_image_record(unframe(rec[a:b]))[2]) for a, b in itertools.pairwise(offsets)]
    record = imageset.from_json((tmp_path / "out/_imgprep/train.images.json").read_bytes(), "train.images.json")
    written = [(tmp_path / "out/train" / e.path).read_bytes() for e in record.images]
    assert written == packed
    for entry, data in zip(record.images, written, strict=True):
        assert entry.md5 == hashlib.md5(data).hexdigest() and entry.bytes == len(data)
        assert (entry.width, entry.height) == dimensions(data) and min(dimensions(data)) == 24


def test_byte_identical_for_any_worker_count(tmp_path: Path) -> None:
    lists = make_source(tmp_path / "src", per_class=6)
    write(lists, tmp_path / "src", tmp_path / "one", TransformSpec(resize=20), num_workers=1)
    write(lists, tmp_path / "src", tmp_path / "four", TransformSpec(resize=20), num_workers=4, executor="thread")
    assert tree(tmp_path / "one") == tree(tmp_path / "four")


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    imgfactory.write(tmp_path / "src/cat/rot.jpg", imgfactory.jpeg(60, 40, orientation=6))
    imgfactory.write(tmp_path / "src/dog/flat.jpg", imgfactory.jpeg(60, 40))
    lists = {"train": [LstItem(0, (0.0,), "cat/rot.jpg"), LstItem(1, (1.0,), "dog/flat.jpg")]}
    got = write(lists, tmp_path / "src", tmp_path / "out", TransformSpec())
    record = got["train"].record
    assert [(e.width, e.height) for e in record.images] == [(40, 60), (60, 40)]


def test_pass_through_keeps_bytes_and_names(tmp_path: Path) -> None:
    lists = make_source(tmp_path / "src")
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(pass_through=True))
    record = imageset.from_json((tmp_path / "out/_imgprep/validation.images.json").read_bytes(), "v")
    for item, entry in zip(lists["val"], record.images, strict=True):
        assert entry.path.split("/", 1)[1] == item.path  # generation folder, then the list's own path
        assert (tmp_path / "out/validation" / entry.path).read_bytes() == (tmp_path / "src" / item.path).read_bytes()


def test_skipped_images_are_left_out_of_the_list_and_the_record(tmp_path: Path) -> None:
    lists = make_source(tmp_path / "src")
    imgfactory.write(tmp_path / "src/cat/broken.jpg", imgfactory.truncated_jpeg(keep=0.05))
    lists["train"].append(LstItem(999, (0.0,), "cat/broken.jpg"))
    got = write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    assert got["train"].skipped == 1 and 999 not in [i.index for i in read_lst(tmp_path / "out/train_lst/train.lst")]
    assert "cat/broken.jpg" in (tmp_path / "out/_imgprep/train.skipped.tsv").read_text()
    assert all(e.index != 999 for e in got["train"].record.images)


def test_a_failing_rerun_leaves_the_previous_output_whole_and_a_good_one_removes_it(tmp_path: Path) -> None:
    lists = make_source(tmp_path / "src")
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    before = tree(tmp_path / "out")
    bad = {k: list(v) for k, v in lists.items()}
    imgfactory.write(tmp_path / "src/cat/broken.jpg", imgfactory.not_an_image())
    bad["val"].append(LstItem(999, (0.0,), "cat/broken.jpg"))
    with pytest.raises(BadRecordsError):
        write(bad, tmp_path / "src", tmp_path / "out", TransformSpec(resize=30), strict=True)
    after = tree(tmp_path / "out")
    assert {k: v for k, v in after.items() if k in before} == before  # every old file, unchanged
    assert len(after) > len(before)  # the failed run's images wait in their own generation
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=30))
    final = tree(tmp_path / "out")
    listed = {f"train/{i.path}" for i in read_lst(tmp_path / "out/train_lst/train.lst")}
    assert {k for k in final if k.startswith("train/")} == listed  # old generations gone, nothing else left
    assert not set(before) & {k for k in final if k.startswith(("train/", "validation/"))}


def test_a_repeated_run_writes_nothing_again(tmp_path: Path) -> None:
    lists = make_source(tmp_path / "src")
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    first = tree(tmp_path / "out")
    again = write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    assert again["train"].written == 0 and again["train"].reused == len(lists["train"])
    assert tree(tmp_path / "out") == first


def test_split_names_map_to_the_algorithms_channels(tmp_path: Path) -> None:
    from imgprep.errors import UsageError
    from imgprep.layout.channels import channels_of

    assert channels_of(["train", "val", "test"]) == {"train": "train", "val": "validation", "test": "test"}
    with pytest.raises(UsageError, match="would all be written to the channel validation/"):
        channels_of(["val", "validation"])


# --------------------------------------------------------------------------- prepare --format images, verify


def test_prepare_format_images_then_verify_catches_a_changed_and_a_missing_image(imgprep_cli, tmp_path: Path) -> None:
    import json

    imgfactory.class_tree(tmp_path / "src", CLASSES, 4, png_every=3)
    out = tmp_path / "out"
    imgprep_cli("prepare", "folders", tmp_path / "src", "-o", out, "--format", "images", "--size", "36x30", "-q")
    assert sorted(p.name for p in out.iterdir()) == [
        "_imgprep", "classes.json", "hyperparameters.json", "train", "train.manifest", "train_lst",
        "validation", "validation.manifest", "validation_lst"]  # no val.lst naming the source's paths
    params = json.loads((out / "hyperparameters.json").read_text())
    train = read_lst(out / "train_lst/train.lst")
    assert params["num_training_samples"] == str(len(train)) and params["image_shape"] == "3,30,36"
    for line in (out / "validation.manifest").read_text().splitlines():
        assert Path(json.loads(line)["source-ref"]).is_file()  # the manifests name the written images
    ok = imgprep_cli("verify", out, "--channel-settings")
    assert "OK: 12 records" in ok.stdout and ok.stdout.count('"application/x-image"') == 4
    first = out / "train" / train[0].path
    first.write_bytes(first.read_bytes()[:-10] + b"0123456789")
    (out / "train" / train[1].path).unlink()
    bad = imgprep_cli("verify", out, check=False)
    assert bad.returncode == 1
    assert f"{train[0].path}: " in bad.stdout and "differ from the image-set record" in bad.stdout
    assert f"{train[1].path}: listed but cannot be read" in bad.stdout


def test_verify_refuses_labels_out_of_range_and_images_smaller_than_image_shape(tmp_path: Path) -> None:
    from imgprep.verify.images import verify_images

    lists = make_source(tmp_path / "src")
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(size=(20, 20)))
    out = tmp_path / "out"
    (out / "hyperparameters.json").write_text('{"num_classes": "2", "image_shape": "3,24,24", "multi_label": "0"}')
    report = verify_images(str(out), Storage())
    text = "\n".join(str(p) for p in report.problems)
    assert "label 2 is not a class index in [0, 2)" in text
    assert "20x20 is smaller than image_shape 3,24,24" in text


def test_processing_job_on_one_two_and_three_hosts_writes_the_same_bytes(tmp_path: Path) -> None:
    """Every host writes its share of the images where a one-host run would; the join makes the
    lists in list order: byte-identical output for any number of hosts."""
    from imgprep.processing.job import Cluster, Job, run_job

    imgfactory.class_tree(tmp_path / "src", CLASSES, 4, png_every=3)
    imgfactory.write(tmp_path / "src/dog/bad.jpg", imgfactory.not_an_image())

    def job(out: Path) -> Job:
        return Job("prepare", str(out), TransformSpec(resize=20), PackOptions(storage=Storage(), num_workers=1),
                   kind="folders", input=str(tmp_path / "src"), output_format="images")

    def opt_ml(name: str) -> str:
        (tmp_path / name / "config").mkdir(parents=True)
        return str(tmp_path / name)

    one = run_job(job(tmp_path / "one"), Cluster(opt_ml=opt_ml("ml1")))
    assert one.outputs[:2] == [str(tmp_path / "one/train_lst/train.lst"),
                               str(tmp_path / "one/validation_lst/validation.lst")]
    for count in (2, 3):
        out = tmp_path / f"hosts{count}"
        for index in [*range(1, count), 0]:  # the others first; host 0 writes its share, then joins
            run_job(job(out), Cluster(opt_ml=opt_ml(f"ml{count}-{index}"), num_parts=count, part_index=index,
                                      run_id=f"r{count}", join="auto" if index == 0 else "no", poll=0.01))
        assert same_but_folder(tree(out), str(out)) == same_but_folder(tree(tmp_path / "one"), str(tmp_path / "one"))


def same_but_folder(files: dict[str, bytes], folder: str) -> dict[str, bytes]:
    """The files with the output folder's own path (in local manifests' source-refs) made neutral."""
    return {name: data.replace(folder.encode(), b"OUT") for name, data in files.items()}


def test_a_prepare_rerun_that_fails_on_an_image_leaves_every_file_of_the_last_one(imgprep_cli, tmp_path: Path) -> None:
    imgfactory.class_tree(tmp_path / "src", CLASSES, 3)
    out = tmp_path / "out"
    imgprep_cli("prepare", "folders", tmp_path / "src", "-o", out, "--format", "images", "--resize", "20", "-q")
    before = tree(out)
    imgfactory.write(tmp_path / "src/emu/zz_broken.jpg", imgfactory.not_an_image())
    failed = imgprep_cli("prepare", "folders", tmp_path / "src", "-o", out, "--format", "images", "--resize", "24",
                         "--strict", "--dedup", "off", "-q", check=False)
    assert failed.returncode != 0 and "zz_broken.jpg" in failed.stderr
    after = tree(out)
    assert {k: v for k, v in after.items() if k in before} == before  # lists, metadata, manifests, images


def test_a_channel_the_new_run_no_longer_makes_is_removed_after_its_commit(tmp_path: Path) -> None:
    lists = make_source(tmp_path / "src", per_class=6)
    three = {"train": lists["train"], "val": lists["val"][:4], "test": lists["val"][4:]}
    write(three, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    assert (tmp_path / "out/test_lst/test.lst").is_file()
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_imgprep", "train", "train_lst", "validation", "validation_lst"]
    assert sorted(p.name for p in (tmp_path / "out/_imgprep").iterdir()) == [
        "train.images.json", "validation.images.json"]


def test_coco_multi_label_prepare_is_read_by_mxnet_with_label_width(mxnet, imgprep_cli, tmp_path: Path) -> None:
    """Seed 000's workflow in one command: multi-hot lists beside the images, each image once."""
    import json

    from test_sources_coco import coco_doc

    doc = coco_doc(24)
    for image in doc["images"]:
        imgfactory.write(tmp_path / "val2017" / image["file_name"], imgfactory.jpeg(48, 40, seed=image["id"]))
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    out = tmp_path / "out"
    imgprep_cli("prepare", "coco", tmp_path / "instances.json", "--image-root", tmp_path / "val2017", "-o", out,
                "--format", "images", "--pass-through", "--split", "train=0.5,val=0.5", "-q")
    classes = int(json.loads((out / "hyperparameters.json").read_text())["num_classes"])
    images = 0
    for channel in ("train", "validation"):
        lst = out / f"{channel}_lst" / f"{channel}.lst"
        items = read_lst(lst)
        assert all(len(i.labels) == classes for i in items)
        got = mxnet.run("imagelist", lst, str(out / channel) + "/", "--data-shape", "3,40,40",
                        "--label-width", classes)
        assert [s["labels"] for s in got["samples"]] == [list(i.labels) for i in items]
        images += len(items)
    written = sorted(p.name for p in (out / "train").rglob("*.jpg")) + sorted(
        p.name for p in (out / "validation").rglob("*.jpg"))
    assert len(written) == len(set(written)) == images  # each image once, in its own split's channel


def test_mnist_prepare_format_images_writes_files_from_the_arrays(imgprep_cli, tmp_path: Path) -> None:
    from test_sources_mnist import write_mnist

    write_mnist(tmp_path / "mnist", n_train=12, n_test=6)
    out = tmp_path / "out"
    imgprep_cli("prepare", "mnist", tmp_path / "mnist", "-o", out, "--format", "images", "--color", "0", "-q")
    assert len(read_lst(out / "train_lst/train.lst")) == 12
    assert len(read_lst(out / "validation_lst/validation.lst")) == 6
    ok = imgprep_cli("verify", out)
    assert "OK: 18 records" in ok.stdout and "28x28x1 (18)" in ok.stdout


def test_inspect_reads_the_channels_and_finds_an_image_in_both(tmp_path: Path) -> None:
    from imgprep.inspect.run import inspect

    lists = make_source(tmp_path / "src")
    lists["val"].append(LstItem(500, lists["train"][0].labels, lists["train"][0].path))  # a leak
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(pass_through=True))
    found = inspect(str(tmp_path / "out"), storage=Storage())
    assert [(s.name, len(s.items)) for s in found.collection.splits] == [("train", 6), ("validation", 7)]
    assert found.summary is not None and found.summary.leaks == 1


def test_sharding_options_are_refused_not_ignored(tmp_path: Path) -> None:
    from imgprep.errors import UsageError

    lists = make_source(tmp_path / "src")
    with pytest.raises(UsageError, match="--shard-records and --shard-size shard RecordIO files"):
        write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(), shard_records=10)
    assert not (tmp_path / "out").exists()


def test_a_hosts_share_is_written_while_another_writer_holds_the_lock_a_whole_run_is_refused(tmp_path: Path) -> None:
    """The hosts of a job write their shares at the same time; only the committer takes the lock."""
    from imgprep.layout.channels import lock_uri
    from imgprep.packing.channels import write_channel
    from imgprep.storage.locks import OtherWriterError

    lists = make_source(tmp_path / "src")
    items, out, storage = lists["train"], str(tmp_path / "out"), Storage()
    held = storage.lock(lock_uri(out), owner=out)  # another host, committing or writing
    try:
        share = write_channel(items[:3], str(tmp_path / "src"), out, "train", TransformSpec(resize=20),
                              PackOptions(storage=storage), whole=items)
        assert [e.index for e in share.entries] == [i.index for i in items[:3]]
        with pytest.raises(OtherWriterError):
            write_channel(items, str(tmp_path / "src"), out, "train", TransformSpec(resize=20),
                          PackOptions(storage=storage))
    finally:
        held.release()


def test_a_rerun_after_a_killed_local_run_writes_only_what_is_missing_and_clears_its_leftovers(tmp_path: Path) -> None:
    """What kill -9 leaves locally: some images renamed into place, a temporary being written."""
    lists = make_source(tmp_path / "src")
    write(lists, tmp_path / "src", tmp_path / "ref", TransformSpec(resize=20))
    write(lists, tmp_path / "src", tmp_path / "out", TransformSpec(resize=20))
    out = tmp_path / "out"
    for lst in (out / "train_lst/train.lst", out / "validation_lst/validation.lst", out / "hyperparameters.json"):
        lst.unlink(missing_ok=True)
    gone = out / "train" / read_lst(tmp_path / "ref/train_lst/train.lst")[2].path
    gone.unlink()
    (gone.parent / f".{gone.name}.k1ll3d.part").write_bytes(b"half an image")
    again = write(lists, tmp_path / "src", out, TransformSpec(resize=20))
    assert again["train"].written == 1 and again["train"].reused == len(lists["train"]) - 1
    assert same_but_folder(tree(out), str(out)) == same_but_folder(tree(tmp_path / "ref"), str(tmp_path / "ref"))


def test_the_api_takes_output_format_and_checks_it_as_the_cli_does(tmp_path: Path) -> None:
    import imgprep

    imgfactory.class_tree(tmp_path / "src", CLASSES, 2)
    done = imgprep.prepare("folders", tmp_path / "src", tmp_path / "out", output_format="images", resize=20,
                           dedup="off")
    assert set(done.packed) == {"train", "val"} and (tmp_path / "out/validation_lst/validation.lst").is_file()
    with pytest.raises(Exception, match="tiff") as refused:
        imgprep.prepare("folders", tmp_path / "src", tmp_path / "other", output_format="tiff")
    assert "images" in str(refused.value) and not (tmp_path / "other").exists()


def test_the_training_reader_says_an_image_channel_is_not_recordio(tmp_path: Path) -> None:
    from imgprep.data import Dataset
    from imgprep.errors import UsageError

    write(make_source(tmp_path / "src"), tmp_path / "src", tmp_path / "out", TransformSpec(resize=20), num_workers=1)
    with pytest.raises(UsageError, match=r"is an image-format channel, written by prepare --format images: "
                                         r"imgprep\.data reads RecordIO only"):
        Dataset(str(tmp_path / "out" / "validation"))
