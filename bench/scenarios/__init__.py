"""The scenarios, one module each (bench/README.md says what each measures and how to run it).

Each module's `run(args, python, connector, report)` starts its own fake server(s), runs its clients and appends its
tables to report["tables"] (and what the targets need to `report`). SCENARIOS lists them in the order they run; the
`--scenarios` names are its keys.
"""

from __future__ import annotations

from bench.scenarios import firstsync, headers, idle, ratelimit, remaining, scaling, throughput, times, tricks

SCENARIOS = {
    "throughput": throughput.run,
    "ratelimit": ratelimit.run,
    "scaling": scaling.run,
    "headers": headers.run,
    "idle": idle.run,
    "tricks": tricks.run,
    "firstsync": firstsync.run,
    "remaining": remaining.run,
    "times": times.run,
}
DEFAULT = "throughput,ratelimit,scaling,headers,idle"  # tricks, firstsync, remaining and times only when asked for
