"""Bytes on disk: the journal, settings and secrets files."""
