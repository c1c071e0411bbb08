"""The append-only journal of accepted interactions (SPEC §2, §8).

Segment files ``journal/00000001.log`` … hold records ``length · crc32 · payload`` where
the payload is one group commit's interactions in msgpack. A record whose length or
checksum does not hold ends its segment: at the tail of the newest segment that is a
write torn by a crash, which recovery cuts off with a warning.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from engauge.stream.interaction import Interaction

log = logging.getLogger("engauge.journal")

HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024
MAX_RECORD = 256 * 1024 * 1024
SUFFIX = ".log"

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Interaction])


class JournalError(OSError):
    """The journal could not be written; nothing of the failed group was acknowledged."""


def encode_record(batch: Sequence[Interaction]) -> bytes:
    payload = _encoder.encode(batch)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _segment_name(number: int) -> str:
    return f"{number:08d}{SUFFIX}"


def _segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def read_segment(path: Path, apply: Callable[[list[Interaction]], None]) -> tuple[int, bool]:
    """Apply every valid record of one segment; return (valid bytes, whether it was whole)."""
    data = path.read_bytes()
    offset = 0
    while offset + HEADER.size <= len(data):
        length, checksum = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if length > MAX_RECORD or len(payload) < length or zlib.crc32(payload) != checksum:
            break
        try:
            batch = _decoder.decode(payload)
        except msgspec.DecodeError:
            break
        apply(batch)
        offset = start + length
    return offset, offset == len(data)


class Journal:
    """Appends records to the newest segment; one writer at a time (the pipeline task).

    Open it with :meth:`recover`, which replays what is on disk first.
    """

    def __init__(self, directory: Path, number: int, size: int) -> None:
        self.directory = directory
        self.number = number
        self.size = size
        self.bytes_written = 0
        self._fd = os.open(directory / _segment_name(number), os.O_WRONLY | os.O_CREAT, 0o600)
        os.lseek(self._fd, size, os.SEEK_SET)

    @classmethod
    def recover(cls, directory: Path, apply: Callable[[list[Interaction]], None]) -> Journal:
        """Replay every segment in order into ``apply``, cut a torn tail, open for appends."""
        directory.mkdir(parents=True, exist_ok=True)
        segments = _segments(directory)
        size = 0
        for index, path in enumerate(segments):
            size, whole = read_segment(path, apply)
            if whole:
                continue
            if index == len(segments) - 1:
                log.warning(
                    "journal %s: cut a torn tail of %d bytes after offset %d",
                    path.name,
                    path.stat().st_size - size,
                    size,
                )
                os.truncate(path, size)
            else:
                log.warning("journal %s: damaged after offset %d; kept the rest", path.name, size)
        number = int(segments[-1].stem) if segments else 1
        return cls(directory, number, size)

    def append(self, batch: Sequence[Interaction]) -> None:
        """Write one record; on failure cut it off again and raise :class:`JournalError`."""
        record = encode_record(batch)
        if self.size >= SEGMENT_BYTES:
            self._roll()
        try:
            view = memoryview(record)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as error:
            self._cut_back()
            raise JournalError(error.errno, f"journal write failed: {error.strerror}") from error
        self.size += len(record)
        self.bytes_written += len(record)

    def sync(self) -> None:
        """Flush written records to stable storage (``fsync``)."""
        os.fsync(self._fd)

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self.size)
            os.lseek(self._fd, self.size, os.SEEK_SET)
        except OSError:
            log.exception("journal: could not cut a failed write back to %d bytes", self.size)

    def _roll(self) -> None:
        self.close()
        self.number += 1
        self.size = 0
        self._fd = os.open(
            self.directory / _segment_name(self.number), os.O_WRONLY | os.O_CREAT, 0o600
        )
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
