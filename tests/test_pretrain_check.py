"""The pre-training check: what prepare writes describes what it packed, and verify holds
hyperparameters.json and classes.json to the records before a training job pays for them."""

from __future__ import annotations

import json

import pytest

from imgprep.api import verify
from imgprep.errors import UsageError


@pytest.fixture
def prepared(tmp_path, imgfactory):
    """Three classes of 6 images (sizes from 50x50 up), two of them unreadable; prepared at --resize 40."""
    files = imgfactory.class_tree(tmp_path / "photos", ["ant", "bee", "cow"], 6)
    files[0].write_bytes(imgfactory.not_an_image())  # ant/img_000.jpg
    files[7].write_bytes(imgfactory.truncated_jpeg(keep=0.1))  # bee/img_001.jpg
    return tmp_path / "photos"


def _prepare(imgprep_cli, photos, out, *extra):
    return imgprep_cli("prepare", "folders", photos, "-o", out, "--split", "train=0.5,val=0.5", "--dedup", "off",
                       *extra)


def _problems(path, **kw) -> list[str]:
    return [str(p) for p in verify(str(path), progress=False, num_workers=1, **kw).problems]


def test_hyperparameters_and_classes_describe_what_was_packed(prepared, tmp_path, imgprep_cli):
    out = tmp_path / "out"
    proc = _prepare(imgprep_cli, prepared, out, "--resize", "40")
    hyper = json.loads((out / "hyperparameters.json").read_text())
    doc = json.loads((out / "classes.json").read_text())
    train = verify(str(out / "train.rec"), progress=False)
    val = verify(str(out / "val.rec"), progress=False)
    assert train.records + val.records == 16
    assert hyper["num_training_samples"] == str(train.records)
    assert doc["splits"] == {"train": train.records, "val": val.records}
    assert [c["counts"]["train"] for c in doc["classes"]] == train.label_counts
    assert [c["counts"]["val"] for c in doc["classes"]] == val.label_counts
    assert "differ from the lists" in proc.stdout + proc.stderr
    assert train.ok and val.ok, train.problems + val.problems


def test_verify_fails_on_a_wrong_image_shape_and_sample_count(prepared, tmp_path, imgprep_cli):
    out = tmp_path / "out"
    _prepare(imgprep_cli, prepared, out, "--size", "48x40", "--fit", "crop")
    hyper = json.loads((out / "hyperparameters.json").read_text())
    assert hyper["image_shape"] == "3,40,48"
    records = verify(str(out / "train.rec"), progress=False).records
    (out / "hyperparameters.json").write_text(json.dumps({**hyper, "image_shape": "3,300,300",
                                                          "num_training_samples": str(records + 2)}))
    problems = _problems(out / "train.rec")
    where = str(out / "hyperparameters.json")
    assert f"{where}: num_training_samples={records + 2} but the training records hold {records}" in problems[0]
    assert problems[1].startswith(f"{where}: image_shape 3,300,300 is larger than {records} image(s) (smallest "
                                  "48x40): training fails") and problems[1].endswith("at most 3,40,48")
    # the validation channel is not held to num_training_samples, but to image_shape
    assert [p for p in _problems(out / "val.rec") if "num_training_samples" in p] == []
    proc = imgprep_cli("verify", out / "train.rec", check=False)
    assert proc.returncode == 1 and "FAILED: 2 problems" in proc.stdout
    assert proc.stdout.endswith("\n") and proc.stderr.startswith("imgprep: error:")


def test_classes_json_counts_are_held_to_the_labels(prepared, tmp_path, imgprep_cli):
    out = tmp_path / "out"
    _prepare(imgprep_cli, prepared, out, "--resize", "40")
    doc = json.loads((out / "classes.json").read_text())
    doc["classes"][2]["counts"]["train"] += 1
    (out / "classes.json").write_text(json.dumps(doc))
    problems = _problems(out / "train.rec")
    assert any(p.endswith(f"class 2 (cow): {doc['classes'][2]['counts']['train']} in train, the records hold "
                          f"{doc['classes'][2]['counts']['train'] - 1}") for p in problems), problems


def test_max_skipped_fails_a_pipeline_on_too_many_bad_images(prepared, tmp_path, imgprep_cli):
    out = tmp_path / "out"
    _prepare(imgprep_cli, prepared, out, "--resize", "40")
    skipped = {name: json.loads((out / f"{name}.dataset.json").read_text())["skipped"] for name in ("train", "val")}
    name = "train" if skipped["train"] else "val"
    problems = _problems(out / f"{name}.rec", max_skipped=0)
    assert problems == [f"{out / name}.rec: 1 image(s) were skipped when packing (11.11% of 9), more than "
                        "--max-skipped 0 (the reasons are in the pack's .skipped.tsv)"]
    assert _problems(out / f"{name}.rec", max_skipped="20%") == []
    proc = imgprep_cli("verify", out / f"{name}.rec", "--max-skipped", "5%", check=False)
    assert proc.returncode == 1
    with pytest.raises(UsageError, match="--max-skipped 'many'"):
        verify(str(out / "train.rec"), max_skipped="many")


def test_channel_settings_are_printed_when_asked(prepared, tmp_path, imgprep_cli):
    out = tmp_path / "out"
    _prepare(imgprep_cli, prepared, out, "--resize", "40", "--manifest-prefix", "s3://bucket/photos/")
    proc = imgprep_cli("verify", out / "val.rec", "--channel-settings", "--max-skipped", "50%")
    text = proc.stdout.split("SageMaker channel settings (InputDataConfig entry):\n", 1)[1]
    records, manifest = text.split("\nOr, reading the augmented manifest beside the records instead "
                                   "(InputDataConfig entry):\n")
    settings = {"recordio": json.loads(records), "manifest": json.loads(manifest)}  # each entry alone, unwrapped
    assert settings["recordio"]["ChannelName"] == "validation"
    assert settings["recordio"]["ContentType"] == "application/x-recordio"
    source = settings["manifest"]["DataSource"]["S3DataSource"]
    assert source["AttributeNames"] == ["source-ref", "class"] and source["S3DataType"] == "AugmentedManifestFile"
    doc = json.loads(imgprep_cli("verify", out / "val.rec", "--json").stdout)
    assert doc["ok"] and doc["problems"] == []


def test_prepare_without_a_transform_says_it_reencodes_and_writes_image_shape(prepared, tmp_path, imgprep_cli):
    out = tmp_path / "out"
    proc = _prepare(imgprep_cli, prepared, out)
    assert "no --resize or --size: every image is decoded and re-encoded as JPG (quality 95)" in proc.stdout
    hyper = json.loads((out / "hyperparameters.json").read_text())
    assert hyper["image_shape"] == "3,50,50"  # the smallest photo is 50x50
    assert verify(str(out / "train.rec"), progress=False).ok


def test_image_sizes_come_from_headers(imgfactory):
    from imgprep.formats.imagesize import dimensions, record_image
    from imgprep.formats.recordio import MAGIC, frame, pack_image_record

    assert dimensions(imgfactory.jpeg(70, 30)) == (70, 30)
    assert dimensions(imgfactory.png(12, 34)) == (12, 34)
    assert dimensions(imgfactory.not_an_image()) is None
    jpeg = imgfactory.jpeg(40, 20)
    image = jpeg + b"\0" * (-len(jpeg) % 4) + MAGIC.to_bytes(4, "little") * 3  # aligned: split into parts
    framed = frame(pack_image_record([1.0, 0.0], 3, image))
    assert int.from_bytes(framed[4:8], "little") >> 29 == 1  # a first part of several
    assert record_image(framed) == image


def test_processing_prepare_describes_what_was_packed_like_one_host(tmp_path, imgfactory):
    """A 3-host Processing job writes the same hyperparameters.json/classes.json as one host's
    prepare: counts without the skipped image, image_shape from the smallest packed image."""
    from test_processing import files, opt_ml, options, run_hosts

    import imgprep
    from imgprep.convert import ConvertOptions
    from imgprep.imaging.spec import TransformSpec
    from imgprep.processing import Cluster, Job, run_job

    tree = tmp_path / "data"
    made = imgfactory.class_tree(tree, ["cat", "dog", "eel"], 6, sizes=((60, 44), (52, 70)))
    made[4].write_bytes(imgfactory.not_an_image())
    spec = TransformSpec(quality=90)
    reference = tmp_path / "ref"
    imgprep.prepare("folders", str(tree), str(reference), spec=spec, options=options(), split="train=0.5,val=0.5",
                    seed=7, dedup="off")
    hyper = json.loads((reference / "hyperparameters.json").read_text())
    assert hyper["image_shape"] == "3,44,44" and hyper["num_training_samples"] in ("8", "9")
    convert = ConvertOptions(split="train=0.5,val=0.5", seed=7, dedup="off")
    out = tmp_path / "job"
    run_hosts(lambda i: Job("prepare", str(out), spec, options(), kind="folders", input=str(tree), convert=convert),
              3, tmp_path)
    got, want = files(out), files(reference)
    assert {k: v for k, v in got.items() if k.endswith(".json")} == {k: v for k, v in want.items()
                                                                      if k.endswith(".json")}
    single = tmp_path / "single"
    run_job(Job("prepare", str(single), spec, options(), kind="folders", input=str(tree), convert=convert),
            Cluster(opt_ml=opt_ml(tmp_path / "one")))
    assert files(single) == want
