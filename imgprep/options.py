"""The command-line options both faces share, and the typed objects they become.

The ``imgprep`` command (:mod:`imgprep.cli`) and the Processing entrypoint
(:mod:`imgprep.processing.command`) take the same options through these decorators; each
decorator hands its command one typed object built once here: ``spec`` (:class:`TransformSpec`),
``options`` (:class:`PackOptions`, holding the run's Store) and ``convert_options``
(:class:`ConvertOptions`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

import click

from imgprep.sources import KINDS

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


class ByteSize(click.ParamType):
    """``1000000``, ``64MiB``, ``1.5GB``."""

    name = "bytes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNITS:
            self.fail(f"{value!r} is not a size (examples: 500000000, 512MiB, 1GB)", param, ctx)
        return int(float(match.group(1)) * _UNITS[unit])


class Size2D(click.ParamType):
    """``348x348``."""

    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*([0-9]+)\s*[xX×]\s*([0-9]+)\s*", str(value))
        if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            self.fail(f"{value!r} is not WIDTHxHEIGHT (example: 348x348)", param, ctx)
        return int(match.group(1)), int(match.group(2))


def transform_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Per-image options; the command receives ``spec: TransformSpec``."""
    options = [
        click.option("--resize", type=click.IntRange(min=1), default=None,
                     help="Scale so the shorter side is N pixels (im2rec's --resize)."),
        click.option("--size", type=Size2D(), default=None, help="Exact output size WxH, e.g. 348x348."),
        click.option("--fit", type=click.Choice(["crop", "pad", "stretch"]), default="crop", show_default=True,
                     help="How --size is reached: centre crop, letterbox pad (black), or stretch."),
        click.option("--center-crop", is_flag=True, help="Square centre crop before resizing (im2rec)."),
        click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
                     help="JPEG quality."),
        click.option("--encoding", type=click.Choice(["jpg", ".jpg", "png", ".png"]), default="jpg",
                     show_default=True, help="Encoding of the stored images."),
        click.option("--color", type=click.Choice(["1", "0", "-1"]), default="1", show_default=True,
                     help="1: RGB, 0: grayscale, -1: as decoded (alpha kept in PNG)."),
        click.option("--pass-through", is_flag=True,
                     help="Store the files' bytes unchanged (no decode; header sanity check only)."),
        click.option("--max-pixels", type=click.IntRange(min=1), default=100_000_000, show_default=True,
                     help="Decompression-bomb guard: refuse larger images before decoding them."),
    ]
    for option in reversed(options):
        f = option(f)

    @functools.wraps(f)
    def wrapper(**kwargs: Any) -> Any:
        from imgprep.imaging.spec import TransformSpec

        _refuse_ignored(kwargs)
        kwargs["spec"] = TransformSpec(
            resize=kwargs.pop("resize") or 0,
            size=kwargs.pop("size"),
            fit=kwargs.pop("fit"),
            center_crop=kwargs.pop("center_crop"),
            quality=kwargs.pop("quality"),
            encoding=kwargs.pop("encoding").lstrip("."),
            color=int(kwargs.pop("color")),
            pass_through=kwargs.pop("pass_through"),
            max_pixels=kwargs.pop("max_pixels"),
        )
        return f(**kwargs)

    return wrapper


def given(name: str) -> bool:
    """Whether the user set option ``name`` (on the command line or through its variable)."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


def _refuse_ignored(kwargs: dict[str, Any]) -> None:
    """Options that would be silently ignored are usage errors: the user meant something by them."""
    if given("fit") and not kwargs["size"]:
        raise click.UsageError("--fit applies to --size WxH only (with --resize the aspect ratio is kept)")
    if kwargs["pass_through"]:
        ignored = [f"--{n.replace('_', '-')}" for n in ("resize", "size", "fit", "center_crop", "quality",
                                                         "encoding", "color") if given(n)]
        if ignored:
            raise click.UsageError(f"--pass-through stores the files unchanged: {', '.join(ignored)} cannot apply")


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Packing-run options; the command receives ``options: PackOptions``."""
    options = [
        click.option("--pack-label", is_flag=True,
                     help="Store all label columns in the record (multi-label; flag = N)."),
        click.option("-j", "--num-workers", type=click.IntRange(min=1), default=None,
                     help="Workers [default: all cores]."),
        click.option("--executor", type=click.Choice(["auto", "thread", "process"]), default="auto",
                     show_default=True,
                     help="Worker kind: auto = threads where the native core makes whole chunks of "
                          "records without the GIL (JPEGs, --pass-through), processes on the Pillow path "
                          "and where the first chunk shows most images need Python (PNGs, CMYK JPEGs)."),
        click.option("--shard-records", type=click.IntRange(min=1), default=None,
                     help="Start a new shard (OUT-00000.rec ...) every N records."),
        click.option("--shard-size", type=ByteSize(), default=None,
                     help="Start a new shard before a .rec would exceed this size (e.g. 1GiB)."),
        click.option("--strict", is_flag=True, help="Fail (exit 3, no dataset committed) on the first bad image."),
        click.option("--checkpoint-every", type=ByteSize(), default=None,
                     help="Checkpoint the shard being written every N bytes, so --resume continues "
                          "mid-shard (on S3: the multipart upload) [default: 32MiB]."),
        click.option("--resume", is_flag=True,
                     help="Continue an interrupted run after its last good published shard (same list, "
                          "settings and version, else refused); without it a rerun starts clean."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary."),
        click.option("--num-classes", type=click.IntRange(min=1), default=None,
                     help="Classes the dataset record states (labels must lie in [0, N)) [default: from the "
                          "classes.json beside the list, else recorded as unknown]."),
        click.option("--progress", is_flag=True,
                     help="Progress as plain lines (start, every 30 s, end), even on a terminal [default: a bar "
                          "on a terminal, lines in a log or pipe]."),
        click.option("--native/--no-native", default=None,
                     help="Force or forbid the libjpeg-turbo core [default: use it when built]."),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
                     help="S3-compatible endpoint for s3:// paths [env: AWS_ENDPOINT_URL]."),
        click.option("--part-size", type=ByteSize(), default=None,
                     help="S3 multipart part size [default: 8MiB; at least 5MiB]."),
        click.option("--max-concurrency", type=click.IntRange(min=1), default=None,
                     help="S3 parts uploading at once per file [default: 4]."),
    ]
    for option in reversed(options):
        f = option(f)

    @functools.wraps(f)
    def wrapper(**kwargs: Any) -> Any:
        from imgprep.imaging import native
        from imgprep.packing.packer import PackOptions

        native.keep_heap()  # this process is ours: a packing run, not a host application

        from imgprep.storage.stores import Storage

        s3_keys = ("endpoint_url", "part_size", "max_concurrency")
        storage = Storage.from_options(**{key: kwargs.pop(key) for key in s3_keys})
        kwargs["options"] = PackOptions(
            num_workers=kwargs.pop("num_workers"),
            shard_records=kwargs.pop("shard_records") or 0,
            shard_size=kwargs.pop("shard_size") or 0,
            strict=kwargs.pop("strict"),
            pack_label=kwargs.pop("pack_label"),
            quiet=kwargs.pop("quiet"),
            progress=kwargs.pop("progress") or None,
            num_classes=kwargs.pop("num_classes"),
            native=kwargs.pop("native"),
            executor=kwargs.pop("executor"),
            resume=kwargs.pop("resume"),
            checkpoint_bytes=kwargs.pop("checkpoint_every") or (32 << 20),
            storage=storage,
        )
        return f(**kwargs)

    return wrapper


def pack_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Both groups: the command receives ``spec`` and ``options``."""
    return transform_options(run_options(f))


def links_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--follow-links-outside-root``, one switch for listing and packing alike.

    Put it below the other option groups (nearest the function): it sets the flag on the
    ``convert_options`` and ``options`` objects they built, whichever the command has.
    """
    from imgprep.storage.roots import ALLOW_SWITCH

    @functools.wraps(f)
    def wrapper(**kwargs: Any) -> Any:
        if kwargs.pop("follow_links_outside_root"):
            for name in ("convert_options", "options"):
                if kwargs.get(name) is not None:
                    kwargs[name] = dataclasses.replace(kwargs[name], follow_links_outside_root=True)
        return f(**kwargs)

    return click.option(
        ALLOW_SWITCH, "follow_links_outside_root", is_flag=True,
        help="Read images reached through symlinks that lead outside the image root (a dataset "
             "assembled as links into a shared store). By default convert and prepare leave such "
             "files out of the lists (the warnings name them) and pack refuses them, so an archive "
             "from elsewhere cannot pull this machine's files into a shard.",
    )(wrapper)


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _dedup_mode(mode: str) -> str:
    if mode == "drop":  # its old name: it never dropped an image, it keeps each group in one split
        click.echo("imgprep: note: --dedup drop is now called --dedup same-split (nothing is dropped: every "
                   "duplicate group is kept in one split)", err=True)
        return "same-split"
    return mode


def dataset_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """KIND INPUT -o OUTDIR, split, manifest and per-source options (``convert``, ``prepare``, the
    Processing job's ``prepare``); the command receives ``convert_options: ConvertOptions``."""
    options = [
        click.argument("kind", type=click.Choice(KINDS)),
        click.argument("input", metavar="INPUT"),
        click.option(
            "-o", "--output", "outdir", required=True, metavar="OUTDIR", help="Output folder or s3://bucket/prefix/."
        ),
        click.option(
            "--split",
            default=None,
            metavar="NAME=SHARE,...",
            help="Shares per split, e.g. train=0.8,val=0.2 or train=0.7,val=0.2,test=0.1.",
        ),
        click.option(
            "--train-per-class",
            type=click.IntRange(min=1),
            default=None,
            metavar="N",
            help="N images of every class to train, the rest to val (Caltech protocol).",
        ),
        click.option(
            "--stratify/--no-stratify", default=True, show_default=True, help="Keep every class's share in every split."
        ),
        click.option(
            "--shuffle/--no-shuffle",
            default=True,
            show_default=True,
            help="Random selection and order (seeded); --no-shuffle keeps input order.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits and order."),
        click.option(
            "--dedup",
            type=click.Choice(["off", "report", "same-split", "drop"]),
            default="report",
            show_default=True,
            help="Duplicate groups (identical files; resized, re-encoded, cropped, padded, rotated or "
            "mirrored copies): report them (leaks = groups across splits, conflicts = groups across "
            "classes), or keep every group in one split (same-split; 'drop' is its old name).",
        ),
        click.option(
            "--dedup-threshold",
            type=click.IntRange(0, 11),
            default=None,
            help="Near-duplicate distance in pHash bits [default: 8].",
        ),
        click.option(
            "--dedup-report",
            default=None,
            metavar="FILE",
            help="Write every duplicate group as JSON Lines (members, splits, which to drop to close a leak).",
        ),
        click.option(
            "--manifest-prefix",
            default=None,
            metavar="S3URI",
            help="Also write <split>.manifest with source-ref = S3URI + image path.",
        ),
        click.option(
            "--label-format",
            type=click.Choice(["multi-hot", "class-id"]),
            default="multi-hot",
            show_default=True,
            help="Multi-label manifests: [1,0,1] or [0,2].",
        ),
        click.option(
            "--attribute", default="class", show_default=True, help="Label attribute name in written manifests."
        ),
        click.option("--job-name", default=None, help="Manifest metadata job-name [default: imgprep-KIND]."),
        click.option(
            "--creation-date",
            default=None,
            metavar="ISO8601",
            help="Manifest metadata creation-date (fixed for reproducible output).",
        ),
        # folders / caltech
        click.option(
            "--extensions",
            default=None,
            metavar="EXT,...",
            help="folders/caltech: image extensions [default: jpg,jpeg,png,ppm,bmp,pgm,tif,tiff,webp].",
        ),
        click.option(
            "--class-depth",
            type=click.IntRange(min=1),
            default=None,
            help="folders: folder level that names the class [default: 1].",
        ),
        click.option(
            "--leaf-classes",
            is_flag=True,
            default=None,
            help="folders: every folder holding images is a class (nested trees).",
        ),
        click.option(
            "--classes",
            "class_list",
            default=None,
            metavar="NAME,...",
            help="folders: use only these classes, in this order.",
        ),
        click.option(
            "--drop-clutter", is_flag=True, default=None, help="caltech: leave out 257.clutter / BACKGROUND_Google."
        ),
        # coco
        click.option(
            "--categories",
            default=None,
            metavar="NAME|ID,...",
            help="coco: categories in label order [default: all, by id].",
        ),
        click.option(
            "--crowd/--no-crowd",
            "include_crowd",
            default=None,
            help="coco: count crowd annotations [default: yes, like getImgIds].",
        ),
        click.option(
            "--min-area",
            type=click.FloatRange(min=0),
            default=None,
            help="coco: ignore annotations smaller than this area.",
        ),
        click.option(
            "--keep-empty",
            is_flag=True,
            default=None,
            help="coco: keep images with none of the categories (all-zero labels).",
        ),
        # mnist
        click.option(
            "--variant",
            type=click.Choice(["fashion", "digits"]),
            default=None,
            help="mnist: class names [default: fashion].",
        ),
        # manifest
        click.option(
            "--root",
            default=None,
            metavar="[S3PREFIX=]DIR",
            help="manifest: local copy of the images (of S3PREFIX, default the common prefix).",
        ),
        click.option(
            "--source-attribute", default=None, help="manifest: label attribute of the input [default: detected]."
        ),
        click.option(
            "--source-label-format",
            type=click.Choice(["class-id", "multi-hot"]),
            default=None,
            help="manifest: how multi-label input lists labels [default: class-id].",
        ),
    ]
    for option in reversed(options):
        f = option(f)

    @functools.wraps(f)
    def wrapper(**kw: Any) -> Any:
        from imgprep.convert import ConvertOptions
        from imgprep.sources.options import SourceOptions

        source = SourceOptions(
            extensions=_csv(kw.pop("extensions")),
            class_depth=kw.pop("class_depth"),
            leaf_classes=kw.pop("leaf_classes") or None,
            classes=_csv(kw.pop("class_list")),
            drop_clutter=kw.pop("drop_clutter") or None,
            categories=_csv(kw.pop("categories")),
            include_crowd=kw.pop("include_crowd"),
            min_area=kw.pop("min_area"),
            keep_empty=kw.pop("keep_empty") or None,
            variant=kw.pop("variant"),
            root=kw.pop("root"),
            source_attribute=kw.pop("source_attribute"),
            source_label_format=kw.pop("source_label_format"),
        )
        kw["convert_options"] = ConvertOptions(
            split=kw.pop("split"),
            train_per_class=kw.pop("train_per_class"),
            stratify=kw.pop("stratify"),
            shuffle=kw.pop("shuffle"),
            seed=kw.pop("seed"),
            dedup=_dedup_mode(kw.pop("dedup")),
            dedup_threshold=kw.pop("dedup_threshold"),
            dedup_report=kw.pop("dedup_report"),
            manifest_prefix=kw.pop("manifest_prefix"),
            label_format=kw.pop("label_format"),
            attribute=kw.pop("attribute"),
            job_name=kw.pop("job_name"),
            creation_date=kw.pop("creation_date"),
            source=source,
        )
        return f(**kw)

    return wrapper
