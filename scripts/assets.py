"""Fetch the dashboard's front-end libraries into the package's static files.

``package.json`` pins each library and its ``engaugeAssets`` field names the files to copy;
``package-lock.json`` gives the tarball address and its SHA-512 integrity. This script
downloads each tarball from the npm registry, refuses one whose hash differs from the lock,
and copies the named files into ``engauge/http/static/vendor/``. It needs only Python's
standard library, so a machine without Node.js can build the dashboard too; files already
fetched for the locked version are kept, so a second run does no network work.

Usage: ``python scripts/assets.py`` (run by ``make run`` and ``make test``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "engauge" / "http" / "static" / "vendor"
STAMP = VENDOR / ".locked"
REGISTRY = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")
TIMEOUT_SECONDS = 60


class AssetError(Exception):
    """A library could not be fetched or did not match the lock."""


def tarball_url(name: str, entry: dict[str, str]) -> str:
    """The lock's ``resolved`` address, or the registry's standard one when it was omitted."""
    if "resolved" in entry:
        return entry["resolved"]
    base = name.rsplit("/", 1)[-1]
    return f"{REGISTRY.rstrip('/')}/{name}/-/{base}-{entry['version']}.tgz"


def check_integrity(data: bytes, integrity: str, name: str) -> None:
    """Compare ``data`` with the lock's Subresource Integrity string (``sha512-<base64>``)."""
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise AssetError(f"{name}: the download does not match package-lock.json's integrity")


def download(url: str, name: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            data: bytes = response.read()
            return data
    except OSError as error:
        raise AssetError(f"{name}: cannot download {url}: {error}") from None


def extract(data: bytes, files: dict[str, str], name: str) -> dict[str, bytes]:
    """The named files of an npm tarball (whose members sit under ``package/``)."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for source, target in files.items():
            member = archive.extractfile(f"package/{source}")
            if member is None:
                raise AssetError(f"{name}: the tarball has no file {source}")
            found[target] = member.read()
    return found


def locked_versions(lock: dict[str, dict[str, dict[str, str]]], names: list[str]) -> str:
    return json.dumps({name: lock["packages"][f"node_modules/{name}"] for name in names})


def fetch_all() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    wanted: dict[str, dict[str, str]] = package["engaugeAssets"]
    stamp = locked_versions(lock, sorted(wanted))
    if STAMP.exists() and STAMP.read_text() == stamp:
        return
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, files in wanted.items():
        entry = lock["packages"][f"node_modules/{name}"]
        data = download(tarball_url(name, entry), name)
        check_integrity(data, entry["integrity"], name)
        for target, content in extract(data, files, name).items():
            (VENDOR / target).write_bytes(content)
        print(f"assets: {name} {entry['version']} -> {VENDOR.relative_to(ROOT)}")
    STAMP.write_text(stamp)


def main() -> int:
    try:
        fetch_all()
    except AssetError as error:
        print(f"assets: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
