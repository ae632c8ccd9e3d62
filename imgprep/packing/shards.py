"""Roll records into ``PREFIX.rec``/``.idx`` or ``PREFIX-00000.rec``/``.idx`` ... shards.

Shards are *finished* (all bytes flushed or uploaded) as they fill, but *committed* — made
visible under their final names — only by :meth:`ShardWriter.commit` once the whole run has
succeeded; each ``.idx`` is written after its ``.rec``.  :meth:`ShardWriter.abort` discards
everything, so an interrupted or failed run leaves no file that looks complete.
"""

from __future__ import annotations

from imgprep.formats.recordio import format_index_line, output_prefix, shard_names
from imgprep.storage.base import Output, Store


class ShardWriter:
    def __init__(
        self,
        prefix: str,
        *,
        shard_records: int = 0,
        shard_size: int = 0,
        storage: Store,
    ) -> None:
        self.prefix = output_prefix(prefix)
        self.shard_records = shard_records
        self.shard_size = shard_size
        self.sharded = bool(shard_records or shard_size)
        self.storage = storage
        self._finished: list[tuple[Output, str, list[str]]] = []
        self._current: Output | None = None
        self._idx_name = ""
        self._idx: list[str] = []
        self._offset = 0
        self.records = 0
        self.bytes = 0

    def _open_next(self) -> None:
        number = len(self._finished) if self.sharded else None
        rec_name, self._idx_name = shard_names(self.prefix, number)
        self._current = self.storage.open_output(rec_name)
        self._idx = []
        self._offset = 0

    def _roll(self) -> None:
        if self._current is not None:
            self._current.finish()
            self._finished.append((self._current, self._idx_name, self._idx))
            self._current = None

    def write(self, framed: bytes, key: int) -> None:
        if self._current is not None and self.sharded:
            full = (self.shard_records and len(self._idx) >= self.shard_records) or (
                self.shard_size and self._offset + len(framed) > self.shard_size
            )
            if full:
                self._roll()
        if self._current is None:
            self._open_next()
        self._current.write(framed)  # type: ignore[union-attr]  # _open_next set it
        self._idx.append(format_index_line(key, self._offset))
        self._offset += len(framed)
        self.records += 1
        self.bytes += len(framed)

    def commit(self) -> list[str]:
        """Make every shard visible; return the URIs written (.rec then .idx per shard)."""
        self._roll()
        written: list[str] = []
        pending = list(self._finished)
        try:
            while pending:
                out, idx_name, idx_lines = pending[0]
                out.commit()
                written.append(out.uri)
                self.storage.write_text(idx_name, "".join(idx_lines))
                written.append(idx_name)
                pending.pop(0)
        except BaseException:
            for out, _, _ in pending:
                out.abort()
            raise
        self._finished = []
        return written

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None
        for out, _, _ in self._finished:
            out.abort()
        self._finished = []
