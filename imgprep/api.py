"""The Python API: the CLI's commands as functions, for training code and notebooks.

    import imgprep
    summary = imgprep.pack("train.lst", root="images/", output="out/train", resize=256)
    with imgprep.recordio.RecordReader("out/train.rec", "out/train.idx") as reader:
        header, labels, jpeg = imgprep.recordio.unpack_image_record(reader.read_key(0))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from imgprep.errors import FormatError
from imgprep.formats.lst import LstItem, parse_lines, read_lst
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import PackOptions, PackSummary
from imgprep.packing.packer import pack as _pack
from imgprep.storage.base import is_remote, read_text

_SPEC_FIELDS = set(TransformSpec.__dataclass_fields__)
_OPTION_FIELDS = set(PackOptions.__dataclass_fields__)


def read_list(uri: str | os.PathLike[str], **storage_options: Any) -> list[LstItem]:
    """Read and validate one ``.lst`` (local path or ``s3://``)."""
    text = os.fspath(uri)
    if is_remote(text):
        return list(parse_lines(read_text(text, **storage_options).splitlines(keepends=True), path=text))
    return read_lst(text)


def read_lists(uris: Iterable[str | os.PathLike[str]], **storage_options: Any) -> list[LstItem]:
    """Read several lists into one, refusing indices that repeat across them."""
    items: list[LstItem] = []
    seen: dict[int, str] = {}
    for uri in uris:
        name = os.fspath(uri)
        for item in read_list(name, **storage_options):
            if item.index in seen:
                raise FormatError(f"index {item.index} also appears in {seen[item.index]}", path=name)
            seen[item.index] = name
            items.append(item)
    return items


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
    ``quiet``, ``native``, ``resume``, ``storage_options``).  Progress bars are off unless ``progress=True``.
    """
    unknown = set(kwargs) - _SPEC_FIELDS - _OPTION_FIELDS
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if spec is None:
        spec = TransformSpec(**{k: v for k, v in kwargs.items() if k in _SPEC_FIELDS})
    if options is None:
        run = {k: v for k, v in kwargs.items() if k in _OPTION_FIELDS}
        run.setdefault("progress", False)
        options = PackOptions(**run)
    from imgprep.packing.items import ListStream

    items: Any
    if isinstance(lists, str | os.PathLike):
        items = ListStream([lists], **options.storage_options)
    elif lists and all(isinstance(x, LstItem) for x in lists):
        items = list(lists)
    else:
        items = ListStream(lists, **options.storage_options)  # type: ignore[arg-type]
    return _pack(items, root, os.fspath(output), spec, options)
