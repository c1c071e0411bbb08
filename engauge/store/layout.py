"""The base path's layout: one name for each directory, used by every module."""

JOURNAL = "journal"
SNAPSHOTS = "snapshots"
ARCHIVE = "archive"
