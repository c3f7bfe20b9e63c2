#!/usr/bin/env python3
"""Benchmark of `source-kustomer` against the fake Kustomer API, with the Singer tap and a raw HTTP floor beside it.

    python bench/run.py [--quick] [--scenarios throughput,ratelimit,scaling,headers,idle] [--profile] ...
    python bench/run.py --help

What it measures, how to run each scenario and how to read the results: bench/README.md. The code is the `bench`
package beside this file (bench/cli.py is the command line); this file only runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts bench/ itself first on sys.path: put the repository root there instead, so that
    # the package is imported as `bench` (and its modules never under a second, top-level name).
    HERE, ROOT = Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent
    if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
        sys.path[0] = str(ROOT)
    elif str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    from bench.cli import main

    main()
