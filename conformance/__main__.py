"""``python -m conformance audit ...`` (reports/audit.py) and ``python -m conformance fuzz ...`` (conformance/fuzz.py).

The one upward import of the layers (tests/test_layers.py): the package's command line hands ``audit`` to the
report layer, which runs this package's suite and writes the report."""
from __future__ import annotations

import sys

USAGE = ("usage: python -m conformance audit module:Class --as SPEC [options]   (a verdict per concern)\n"
         "       python -m conformance audit --backend module:attr [options]\n"
         "       python -m conformance fuzz [-n N] [--minutes M] -- PYTEST_ARGS    (a HypoFuzz campaign)\n"
         "'python -m conformance audit --help' lists the options.")


def main(argv: list) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "audit":
        from reports.audit import main as audit
        return audit(rest)
    if command == "fuzz":
        from .fuzz import main as fuzz
        return fuzz(rest)
    print(f"unknown command {command!r}: known commands are audit, fuzz\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
