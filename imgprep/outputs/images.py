"""The image format: ``train/``, ``validation/`` (and ``test/``) image channels with
``train_lst/train.lst``, ``validation_lst/validation.lst`` beside them — what SageMaker's
image-classification algorithm reads in File mode with ``application/x-image`` (and, through
the manifests written with it, in Pipe mode as an augmented manifest).

The prepare executor writes each split's images (:meth:`ImageChannels.write_split`), then
commits: :meth:`ImageChannels.publish` writes every channel's list once every image of every
split is in place, before the class map and ``hyperparameters.json``; :meth:`ImageChannels.finish`
removes the old generation after them (see :mod:`imgprep.packing.channels` for the invariants).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from imgprep.outputs import register
from imgprep.outputs.base import OutputFormat

if TYPE_CHECKING:
    from imgprep.formats.dataset import ListRef
    from imgprep.formats.lst import LstItem
    from imgprep.imaging.spec import TransformSpec
    from imgprep.inspect.analyse import Findings
    from imgprep.packing.packer import PackOptions
    from imgprep.storage.base import Store
    from imgprep.verify.report import Report


class ImageChannels(OutputFormat):
    """One channel of image files per split and its ``.lst``; images found in place are not
    written again, so ``--resume`` (or any rerun of the same prepare) uploads only what is missing."""

    name = "images"
    joins_parts = False

    def split_output(self, outdir: str, split: str) -> str:
        """The channel folder (``OUTDIR/validation`` for the split ``val``)."""
        from imgprep.layout.channels import channel_of
        from imgprep.storage.base import join

        return join(outdir, channel_of(split))

    def write_split(self, items: Collection[LstItem], source: Any, output: str, spec: TransformSpec,
                    options: PackOptions, *, storage: Store,
                    before_publish: Callable[[], None] | None = None) -> Any:
        """The split's images, into a generation folder of their own: nothing a reader sees changes
        (no list is written), so ``before_publish`` is not called here; the executor's retirement
        after the last split and :meth:`finish` after the commit retire the old generation."""
        from imgprep.packing.channels import write_channel

        outdir, channel = _parent(output)
        return write_channel(list(items), source, outdir, channel, spec, options, storage=storage)

    def publish(self, outdir: str, written: Mapping[str, Any], storage: Store, converted: Any) -> list[str]:
        """The channels' records and lists; the top-level lists of the source's paths are dropped
        (the channel lists replace them) and, without ``--manifest-prefix``, manifests naming
        the written objects take their place."""
        from imgprep.packing.channels import commit_lists

        lists = commit_lists(outdir, written.values(), storage, lock=True)
        _replace_files(converted, outdir, written)
        return lists

    def finish(self, outdir: str, written: Mapping[str, Any], storage: Store) -> None:
        from imgprep.packing.channels import finish

        finish(outdir, written.values(), storage)

    def earlier_list(self, output: str, storage: Store) -> ListRef | None:
        """None: another prepare's images live in a generation of their own, so a rerun that
        split the data differently is safe (it is not refused; it writes beside the old one)."""
        return None

    def retire(self, output: str, storage: Store) -> None:
        """Nothing here: the old generation is removed by :meth:`finish`, after the new lists."""

    def accepts(self, path: str, storage: Store) -> bool:
        from imgprep.verify.images import is_image_output

        return is_image_output(path, storage)

    def verify(self, path: str, storage: Store, **options: Any) -> Report:
        from imgprep.verify.images import verify_images

        return verify_images(path, storage, **options)

    def inspect(self, path: str, storage: Store, **options: Any) -> Findings:
        """The channels' lists and images (inspect reads ``<channel>_lst/<channel>.lst`` with the
        channel as its root)."""
        from imgprep.inspect.run import inspect

        return inspect(path, storage=storage, **options)


def _parent(output: str) -> tuple[str, str]:
    head, _, channel = output.rstrip("/").rpartition("/")
    return head or ".", channel


def _replace_files(converted: Any, outdir: str, written: Mapping[str, Any]) -> None:
    """The files convert left for the commit, for this format: no top-level ``<split>.lst`` (its
    paths are the source's), and manifests of the written objects unless the user gave a prefix."""
    from imgprep.layout import prepared

    dropped = {prepared.list_name(outdir, split) for split in written}
    files = [(target, text) for target, text in converted.files if target not in dropped]
    converted.outputs = [target for target in converted.outputs if target not in dropped]
    if all(not target.endswith(prepared.MANIFEST_SUFFIX) for target, _ in files):
        made, converted.channel = manifest_files(outdir, written, converted.dataset, _created(converted))
        files[-1:-1] = made  # before hyperparameters.json, the commit point
        converted.outputs[-1:-1] = [target for target, _ in made]
    converted.files = files


def manifest_files(outdir: str, written: Mapping[str, Any], dataset: Any,
                   created: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """``<channel>.manifest`` of each written channel, ``source-ref`` the written objects, and the
    channel settings that read them."""
    from imgprep.formats import manifest as manifest_format
    from imgprep.layout import prepared
    from imgprep.layout.channels import channel_uri

    names = [c.name for c in dataset.classes]
    made = []
    settings: dict[str, Any] = {}
    for summary in written.values():
        options = manifest_format.ManifestOptions(prefix=channel_uri(outdir, summary.channel),
                                                  job_name=f"imgprep-{dataset.kind}", creation_date=created)
        records = (manifest_format.record(it.path, it.labels, names, multi_label=dataset.multi_label, options=options)
                   for it in summary.items)
        made.append((prepared.manifest_name(outdir, summary.channel), manifest_format.dumps(records)))
        settings = manifest_format.channel_settings(multi_label=dataset.multi_label, options=options)
    return made, settings


def _created(converted: Any) -> str:
    from imgprep.convert import creation_date

    return creation_date(None, converted.dataset)


register(ImageChannels())
