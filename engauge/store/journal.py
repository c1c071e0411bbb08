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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
from attrs import define

from engauge.store.files import sync_directory, write_atomically
from engauge.stream.interaction import Interaction, UserKey

log = logging.getLogger("engauge.journal")

HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024
MAX_RECORD = 256 * 1024 * 1024
SUFFIX = ".log"

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Interaction])


@define(frozen=True, order=True)
class Position:
    """A place in the journal: everything before ``offset`` of segment ``segment``."""

    segment: int
    offset: int


class JournalError(OSError):
    """The journal could not be written; nothing of the failed group was acknowledged."""


def encode_batch(batch: Sequence[Interaction]) -> bytes:
    """A batch as a journal record's payload: also the body of a partition stream's entry
    in a cluster (see :mod:`engauge.cluster`)."""
    return _encoder.encode(batch)


def decode_batch(payload: bytes) -> list[Interaction]:
    """The batch of :func:`encode_batch`; ``msgspec.DecodeError`` if it is not one."""
    return _decoder.decode(payload)


def encode_record(batch: Sequence[Interaction]) -> bytes:
    payload = encode_batch(batch)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _segment_name(number: int) -> str:
    return f"{number:08d}{SUFFIX}"


def segment_files(directory: Path) -> list[Path]:
    """The journal's segment files, oldest first."""
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def read_segment(
    path: Path, apply: Callable[[list[Interaction]], None], offset: int = 0
) -> tuple[int, bool]:
    """Apply every valid record from ``offset`` on; return (valid bytes, whether it was whole)."""
    data = path.read_bytes()
    while offset + HEADER.size <= len(data):
        length, checksum = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if length > MAX_RECORD or len(payload) < length or zlib.crc32(payload) != checksum:
            break
        try:
            batch = decode_batch(payload)
        except msgspec.DecodeError:
            break
        apply(batch)
        offset = start + length
    return offset, offset == len(data)


def _cut_tail(path: Path, size: int) -> None:
    """Cut a torn or damaged tail off the newest segment, keeping the bytes aside."""
    data = path.read_bytes()
    kept = path.with_name(f"{path.name}.damaged-{size}")
    kept.write_bytes(data[size:])
    os.truncate(path, size)
    log.warning(
        "journal %s: cut %d bytes after offset %d that do not form whole records "
        "(a write torn by a crash); they are kept in %s",
        path.name,
        len(data) - size,
        size,
        kept.name,
    )


class Journal:
    """Appends records to the newest segment; one writer at a time (the pipeline task).

    Open it with :meth:`recover`, which replays what is on disk first.
    """

    def __init__(self, directory: Path, number: int, size: int) -> None:
        self.directory = directory
        self.number = number
        self.size = size
        self._fd = self._open_segment()

    def _open_segment(self) -> int:
        fd = os.open(self.directory / _segment_name(self.number), os.O_WRONLY | os.O_CREAT, 0o600)
        os.lseek(fd, self.size, os.SEEK_SET)
        return fd

    @classmethod
    def recover(
        cls,
        directory: Path,
        apply: Callable[[list[Interaction]], None],
        after: Position | None = None,
    ) -> Journal:
        """Replay the records after ``after`` (all when ``None``) in order into ``apply``,
        cut a torn tail, and open the journal for appends."""
        directory.mkdir(parents=True, exist_ok=True)
        segments = segment_files(directory)
        start = after or Position(0, 0)
        if segments and int(segments[0].stem) > max(start.segment, 1):
            log.warning(
                "journal: segments before %s are not here (retired after snapshots); "
                "what they held is not replayed",
                segments[0].name,
            )
        size = 0
        for index, path in enumerate(segments):
            number = int(path.stem)
            if number < start.segment:
                continue
            offset = start.offset if number == start.segment else 0
            size, whole = read_segment(path, apply, offset)
            if whole:
                continue
            if index == len(segments) - 1:
                _cut_tail(path, size)
            else:
                log.warning("journal %s: damaged after offset %d; kept the rest", path.name, size)
        last = int(segments[-1].stem) if segments else 0
        if last >= max(start.segment, 1):
            return cls(directory, last, size)
        # Nothing to append to at or after the covered position: a fresh segment after it,
        # so that no new record can sit at an offset the position says is covered.
        return cls(directory, max(last, start.segment) + 1, 0)

    @property
    def position(self) -> Position:
        """Where the next record will be written: the end of everything written so far."""
        return Position(self.number, self.size)

    def append(self, batch: Sequence[Interaction]) -> None:
        """Write one record (see :meth:`append_group`)."""
        self.append_group([batch])

    def append_group(self, batches: Sequence[Sequence[Interaction]]) -> None:
        """Write one record per batch with a single ``write``; on failure cut them off again
        and raise :class:`JournalError`."""
        data = b"".join(encode_record(batch) for batch in batches)
        if self.size >= SEGMENT_BYTES:
            self.roll()
        before = self.position
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as error:
            self.cut_back(before)
            raise JournalError(error.errno, f"journal write failed: {error.strerror}") from error
        self.size += len(data)

    def cut_back(self, position: Position) -> None:
        """Remove what was written after ``position``, in its own segment (the journal may
        have rolled to a newer one since)."""
        try:
            if position.segment == self.number:
                os.ftruncate(self._fd, position.offset)
                os.lseek(self._fd, position.offset, os.SEEK_SET)
                self.size = position.offset
            else:
                os.truncate(self.directory / _segment_name(position.segment), position.offset)
        except OSError:
            log.exception("journal: could not cut a failed write back to %s", position)

    def sync(self) -> None:
        """Flush written records to stable storage (``fsync``)."""
        os.fsync(self._fd)

    def detached_sync(self) -> Callable[[], None]:
        """A function that ``fsync``s what is written so far, to run in a worker thread.

        It holds its own duplicate of the file descriptor, so the journal may roll to a new
        segment (closing its descriptor) while the function runs.
        """
        fd = os.dup(self._fd)

        def sync() -> None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        return sync

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def retire_before(self, segment: int, archive: Path | None) -> list[Path]:
        """Move the segments numbered below ``segment`` (a snapshot covers them) into
        ``archive``, where exports read them, or delete them when ``archive`` is ``None``;
        the archived files."""
        archived: list[Path] = []
        for path in segment_files(self.directory):
            if int(path.stem) >= segment:
                continue
            if archive is None:
                path.unlink()
            else:
                archive.mkdir(parents=True, exist_ok=True)
                path.rename(archive / path.name)
                archived.append(archive / path.name)
        return archived

    def roll(self) -> None:
        """Continue in a new segment, so the older ones can be deleted once covered."""
        if self.size == 0:
            return
        self.close()
        self.number += 1
        self.size = 0
        self._fd = self._open_segment()
        sync_directory(self.directory)


def read_interactions(directories: Sequence[Path]) -> Iterator[list[Interaction]]:
    """Every journaled batch in the segments of ``directories``, oldest segment first.

    A segment may move from one directory to another (the journal retires it into the
    archive) while this runs: it is then read from where it went.
    """
    names = sorted(
        {path.name for directory in directories for path in segment_files(directory)},
        key=lambda name: int(name.split(".")[0]),
    )
    for name in names:
        batches: list[list[Interaction]] = []
        # Twice round: a segment retired between two looks is found on the second.
        for directory in [*directories, *directories]:
            try:
                read_segment(directory / name, batches.append)
                break
            except FileNotFoundError:
                continue
        yield from batches


def drop_archived_before(archive: Path, cutoff: float) -> int:
    """Delete the archived segments last written before ``cutoff`` (Unix time): raw
    interactions past their retention. A segment is written in receipt order, so its last
    write is its newest interaction's arrival."""
    dropped = 0
    for path in segment_files(archive) if archive.is_dir() else []:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                dropped += 1
        except FileNotFoundError:
            continue
    return dropped


def scrub_segment(path: Path, erased: Callable[[UserKey], bool]) -> int:
    """Rewrite a segment no longer appended to without the interactions of erased users,
    atomically and keeping its time (retention reads it); how many were removed."""
    batches: list[list[Interaction]] = []
    try:
        read_segment(path, batches.append)
        written = path.stat()
    except FileNotFoundError:
        return 0
    kept = [[item for item in batch if not erased(item.user)] for batch in batches]
    removed = sum(map(len, batches)) - sum(map(len, kept))
    if removed:
        write_atomically(path, b"".join(encode_record(batch) for batch in kept if batch))
        os.utime(path, ns=(written.st_atime_ns, written.st_mtime_ns))
    return removed
