"""The Python API: the CLI's commands as functions, for training code and notebooks.

    import imgprep
    summary = imgprep.pack("train.lst", root="images/", output="out/train", resize=256)
    with imgprep.recordio.RecordReader("out/train.rec", "out/train.idx") as reader:
        header, labels, jpeg = imgprep.recordio.unpack_image_record(reader.read_key(0))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import PackOptions, PackSummary
from imgprep.packing.packer import pack as _pack
from imgprep.splits import lists as _lists
from imgprep.storage.base import Store
from imgprep.storage.stores import Storage

__all__ = ["Storage", "pack", "read_list", "read_lists", "write_lst"]

_SPEC_FIELDS = set(TransformSpec.__dataclass_fields__)
_OPTION_FIELDS = set(PackOptions.__dataclass_fields__)


def pack(
    lists: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Sequence[LstItem],
    root: Any,
    output: str | os.PathLike[str],
    spec: TransformSpec | None = None,
    options: PackOptions | None = None,
    **kwargs: Any,
) -> PackSummary:
    """Pack lists (paths, or ``LstItem`` objects) into RecordIO — ``imgprep pack`` as a function.

    Keyword arguments are the CLI's options: transform ones (``resize``, ``size=(W, H)``, ``fit``,
    ``center_crop``, ``quality``, ``encoding``, ``color``, ``pass_through``, ``max_pixels``) and
    run ones (``num_workers``, ``shard_records``, ``shard_size``, ``strict``, ``pack_label``,
    ``quiet``, ``native``, ``resume``), and ``storage`` (a :class:`Storage`) or ``storage_options`` (a
    dict of its options: ``endpoint_url``, ``part_size``, ``max_concurrency``, ...; unknown names
    are errors).  Progress bars are off unless ``progress=True``.
    """
    storage_options = kwargs.pop("storage_options", None)
    if storage_options is not None:
        if "storage" in kwargs:
            raise TypeError("give storage or storage_options, not both")
        kwargs["storage"] = Storage.from_options(**storage_options)
    unknown = set(kwargs) - _SPEC_FIELDS - _OPTION_FIELDS
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if spec is None:
        spec = TransformSpec(**{k: v for k, v in kwargs.items() if k in _SPEC_FIELDS})
    if options is None:
        run = {k: v for k, v in kwargs.items() if k in _OPTION_FIELDS}
        run.setdefault("progress", False)
        options = PackOptions(**run)
    if options.storage is None:
        options = dataclasses.replace(options, storage=Storage())
    from imgprep.splits.stream import ListStream

    items: Any
    if isinstance(lists, str | os.PathLike):
        items = ListStream([lists], options.storage)
    elif lists and all(isinstance(x, LstItem) for x in lists):
        items = list(lists)
    else:
        items = ListStream(lists, options.storage)  # type: ignore[arg-type]
    return _pack(items, root, os.fspath(output), spec, options)


def read_list(uri: str | os.PathLike[str], storage: Store | None = None) -> list[LstItem]:
    """Read and validate one ``.lst`` (local path or ``s3://``; ``storage`` defaults to :class:`Storage`)."""
    return _lists.read_list(uri, storage or Storage())


def read_lists(uris: Sequence[str | os.PathLike[str]], storage: Store | None = None) -> list[LstItem]:
    """Read several lists into one, refusing indices that repeat across them."""
    return _lists.read_lists(uris, storage or Storage())


def write_lst(uri: str | os.PathLike[str], items: Sequence[LstItem], storage: Store | None = None) -> None:
    """Write a ``.lst`` atomically (local: temporary name then rename; S3: one PUT)."""
    _lists.write_lst(uri, items, storage or Storage())
