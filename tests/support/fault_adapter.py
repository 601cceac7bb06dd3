"""``twiml-adapter serve`` for the fault-injection tests (run as a subprocess by fault_lab.py).

It runs the real CLI entry point, `adapter.cli.main(["serve", ...])`; adapter/service.py starts
the startup recovery and the sweeps itself (`adapter.recovery.startup`).
"""

from __future__ import annotations

import sys

from adapter import cli

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
