"""One target under atheris in this process: ``python -m fuzz.engine TARGET [libFuzzer
arguments] [corpus directories]``.

``atheris.Fuzz()`` never returns: libFuzzer ends the process when the time is up or an
input fails, which is why ``python -m fuzz`` starts one process per target. The readers
are imported under atheris' instrumentation, so that the fuzzer is guided by the branches
of Engauge's code, of ``email`` (whose RFC 1123 date parser is pure Python) and of
``cattrs`` (which structures snapshots).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["engauge", "email", "cattrs"]):
    from fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
