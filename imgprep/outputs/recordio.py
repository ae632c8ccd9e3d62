"""RecordIO: each split packed into ``OUTDIR/<split>.rec`` + ``.idx`` (or shards), with its dataset
record — the format SageMaker's image-classification algorithm reads in Pipe mode."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from imgprep.outputs import register
from imgprep.outputs.base import OutputFormat

if TYPE_CHECKING:
    from imgprep.formats.dataset import ListRef
    from imgprep.formats.lst import LstItem
    from imgprep.imaging.spec import TransformSpec
    from imgprep.inspect.analyse import Findings
    from imgprep.packing.packer import PackOptions, PackSummary
    from imgprep.storage.base import Store
    from imgprep.verify.report import Report


class RecordIO(OutputFormat):
    """The packer's output (:mod:`imgprep.packing`): shards published as they fill, the dataset
    record last; ``--resume`` continues after the last good shard."""

    name = "recordio"
    joins_parts = True  # processing.join merges the hosts' parts in list order

    def write_split(self, items: Collection[LstItem], source: Any, output: str, spec: TransformSpec,
                    options: PackOptions, *, storage: Store,
                    before_publish: Callable[[], None] | None = None) -> PackSummary:
        from imgprep.packing.packer import pack

        return pack(items, source, output, spec, options, storage=storage, before_publish=before_publish)

    def earlier_list(self, output: str, storage: Store) -> ListRef | None:
        from imgprep.layout.retire import earlier_list

        return earlier_list(output, storage)

    def retire(self, output: str, storage: Store) -> None:
        from imgprep.layout.retire import retire_output

        retire_output(output, storage)

    def accepts(self, path: str, storage: Store) -> bool:
        return True  # the default: a .rec, a shard prefix or a dataset record

    def verify(self, path: str, storage: Store, *, workers: int | None = None, progress: bool | None = None,
               **checks: Any) -> Report:
        from imgprep.verify.run import Checks, verify

        return verify(path, storage=storage, checks=Checks(**checks), workers=workers, progress=progress)

    def inspect(self, path: str, storage: Store, **options: Any) -> Findings:
        from imgprep.inspect.run import inspect

        return inspect(path, storage=storage, **options)


register(RecordIO())
