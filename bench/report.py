"""The report: Markdown tables and cells, the targets, the facts about the machine, and bench/results.md itself.

Each scenario (bench/scenarios/) appends `(title, body)` to report["tables"] with `table` and the cell formats
below; `write_results` writes them under a header (date, command, machine, connector code) and the targets, and
keeps the hand-written "## What we tried" section at the end of the file. Paths in the results are relative to the
repository root; `scrub` (bench/common.py) keeps any other absolute path of this machine out of the file.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

from bench.common import RESULTS, scrub
from bench.measure import GNU_TIME, Measured

TRIED_HEADING = "## What we tried"

# Targets the team aims for, reported next to the measurements.
TARGET_VS_SINGER, TARGET_VS_FLOOR = 3.0, 0.5
TARGET_RATE_SLACK, TARGET_EXTRA_REQUESTS = 0.10, 0.01
TARGET_RSS_MB, TARGET_RSS_GROWTH = 250.0, 0.15


# --- Formatting ---------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def f1(x) -> str:
    return "" if x is None else f"{x:,.1f}"


def n0(x) -> str:
    return "" if x is None else f"{x:,.0f}"


def ratio(a: float, b: float) -> float | None:
    return a / b if a and b else None


def status(result: Measured, expected: int | None = None) -> str:
    if result.timed_out:
        return "timed out"
    if result.returncode:
        return f"exit {result.returncode}, {len(result.errors)} errors"
    if result.errors:
        return f"{len(result.errors)} errors"
    if expected is not None and result.total != expected:
        return f"{result.total - expected:+,} records vs the data"
    return "ok"


def met(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "**no**")



# --- The targets, the machine, the results file --------------------------------------------------------------------


def targets(report: dict) -> str:
    rows = []
    runs = report.get("throughput_runs")
    if runs:
        connector_all, floor1, floor2, pipeline, connector_tap, singer, *incremental = (r for _, r in runs)
        vs_singer = ratio(connector_tap.rate, singer.rate)
        rows.append(["records/s >= 3x the Singer tap's (same 9 streams)",
                     f"{n0(connector_tap.rate)} vs {n0(singer.rate)}: **x{vs_singer:.2f}**" if vs_singer else "n/a",
                     met(vs_singer and vs_singer >= TARGET_VS_SINGER)])
        best_floor = max(floor1.rate, floor2.rate)
        rounds = report.get("floor_ratios", [])
        vs_floor = statistics.median(rounds) if rounds and None not in rounds else None
        rows.append([f"records/s >= 0.5x the raw floor's (faster of 1 and 2 threads; median of {len(rounds)} "
                     "alternating rounds)", f"{n0(connector_all.rate)} vs {n0(best_floor)} in round 1; rounds "
                     f"{', '.join(f'x{r:.2f}' for r in rounds)}: **x{vs_floor:.2f}**" if vs_floor else "n/a",
                     met(vs_floor and vs_floor >= TARGET_VS_FLOOR)])
        if ratio(pipeline.rate, best_floor):
            rows.append(["(not a target) the least a connector of the CDK's shape does, the Python pipeline without "
                         "the CDK, against the same floor: what 0.5 leaves the CDK", f"{n0(pipeline.rate)} vs "
                         f"{n0(best_floor)}: x{ratio(pipeline.rate, best_floor):.2f}; source-kustomer x"
                         f"{ratio(connector_all.rate, pipeline.rate):.2f} of the pipeline", "-"])
        if incremental and ratio(incremental[0].rate, best_floor):
            rows.append(["(not a target) the same, as a first incremental sync, whose cursor parses each record's "
                         "`updatedAt` for the state", f"{n0(incremental[0].rate)} vs {n0(best_floor)}: "
                         f"x{ratio(incremental[0].rate, best_floor):.2f}", "-"])
        extra = report["extra_requests"]
        rows.append(["requests <= 1% over the minimum pages (every stream / the 9 streams)",
                     " / ".join(f"{e:+.2%}" for e in extra), met(max(extra) <= TARGET_EXTRA_REQUESTS)])
    if report.get("rate_worst") is not None:
        worst = report["rate_worst"]
        rows.append(["rate-limited sync within 10% of the budget minimum (worst run where the budget binds, i.e. "
                     "pages / allowed rate exceeds the unthrottled sync time)",
                     f"wall / budget min up to {worst:.2f}", met(worst <= 1 + TARGET_RATE_SLACK)])
    rss = [r.peak_rss_mb for key in ("throughput_runs", "rate_runs", "scale_runs")
           for *_, r in report.get(key, []) if r.label.startswith("source-kustomer") or key != "throughput_runs"]
    if rss:
        rows.append(["peak RSS < 250 MB (every connector run)", f"max {max(rss):.0f} MB", met(max(rss) < TARGET_RSS_MB)])
    if report.get("rss_growth") is not None:
        rows.append(["peak RSS grows < 15% from the small to the large size", f"{report['rss_growth']:+.1%}",
                     met(report["rss_growth"] < TARGET_RSS_GROWTH)])
    return table(["target", "measured (same run)", "met"], rows)



def machine(python: str) -> list[str]:
    versions = subprocess.run([python, "-c", "import sys, importlib.metadata as m; print(sys.version.split()[0]); "
                                             "print(m.version('airbyte-cdk'))"],
                              capture_output=True, text=True).stdout.split()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), None) if Path("/proc/meminfo").exists() else None
    return [f"nproc {os.cpu_count()} ({cpu}), {memory:,} MB RAM, shared with other work" if memory else
            f"nproc {os.cpu_count()}",
            f"{platform.system()} {platform.release()}",
            f"connector: Python {versions[0] if versions else '?'}, airbyte-cdk {versions[1] if len(versions) > 1 else '?'}",
            f"peak RSS from {'/usr/bin/time -v' if GNU_TIME else 'os.wait4 rusage'}"]


def section_facts(report: dict, connector, first_code: int, started: float, load: float) -> str:
    """The facts a scenario's section carries, so that it can stand in bench/results.md on its own (copied from a
    run that wrote another --results file): when and how long, the command, the machine, the connector (its
    version, the hash of its package files with git state, the checkout's uncommitted changes) and the load. The
    code of every run since `first_code` (index into connector.codes): one line, or each run's when it changed.
    `started` (perf_counter) and `load` (the 1-minute load average): at the scenario's start."""
    from bench.harness import connector_version, tree_state  # harness imports this module's neighbours only

    codes = connector.codes[first_code:]
    lines = [f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} (this section took "
             f"{(time.perf_counter() - started) / 60:.1f} min)",
             f"- command: `{report.get('command', '?')}`",
             *[f"- {fact}" for fact in report.get("facts", [])],
             f"- connector version {connector_version(connector)}; checkout at {tree_state()}"]
    lines += code_lines(codes or [("", connector.fingerprint())], "these runs")
    lines.append(f"- load average (1 min) at the start {load:.1f}, at the end {os.getloadavg()[0]:.1f}: other work "
                 "shares this machine")
    return "\n".join(lines)


def code_lines(codes: list[tuple[str, str]], during: str = "this benchmark") -> list[str]:
    """The connector's code over (run, fingerprint) pairs: one line, or each run's when it changed."""
    distinct = list(dict.fromkeys(code.split()[0] for _, code in codes))
    if len(distinct) <= 1:
        return [f"- connector code (hash of its package files, git state): {codes[0][1] if codes else 'n/a'}"]
    return [f"- **the connector's code changed during {during}** (others work in the same tree): compare only "
            "runs with the same code;", *[f"  - {run}: {code}" for run, code in codes]]


def write_results(report: dict, command: str, facts: list[str], started: float, results: Path = RESULTS) -> str:
    """Rewrites `results` up to its "What we tried" heading (kept as it is); returns the part written."""
    lines = ["# source-kustomer benchmark", "",
             "Generated by `bench/run.py`; everything above the \"What we tried\" heading is rewritten by each run.",
             "Ratios compare runs made side by side in the same run on a shared 2-core machine; the absolute numbers "
             "are not claims about speed anywhere else.", "",
             f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} (the whole run took "
             f"{(time.perf_counter() - started) / 60:.1f} min)",
             f"- command: `{command}`", *[f"- {fact}" for fact in facts], *code_lines(report.get("codes") or []),
             f"- load average (1 min) at the start {report['load'][0]:.1f}, at the end {os.getloadavg()[0]:.1f}: "
             "other work shares this machine, so repeat a run before trusting a small difference", "",
             "## Targets", "", targets(report), ""]
    for title, body in report["tables"]:
        lines += [f"## {title}", "", body, ""]
    if report.get("profile"):
        result, summary = report["profile"]
        span = (f"its first {result.wall:.0f} s (stopped there)" if result.timed_out
                else f"the whole sync ({result.wall:.1f} s)")
        lines += ["## Profile of a full sync (py-spy, every stream)", "",
                  f"Sampled over {span}, {result.total:,} records; raw stacks in bench/out/profile.raw.txt.", "",
                  "```", *summary, "```", ""]
    lines += ["## How it was measured", "",
              "- Every client reads from the same fake (`bench/server.py`, its own process, orjson serialisation) "
              "on 127.0.0.1; requests and bytes are counted by the server (response bodies).",
              "- Wall time runs from process start to exit (startup and discovery included); records/s = records / "
              "wall. \"1st record s\" is the startup part.",
              "- CPU/wall is the client's CPU time over its wall time (above 100%: more than one core). The connector "
              "is CPU-bound here, so well under ~95% means it waited: on the fake server or for a core that other "
              "work on the machine had.",
              "- The raw floor is bounded by the fake server (Python's http.server) more than by its own client (see "
              "its CPU/wall), so the real floor is faster still: the connector/floor ratio flatters the connector.",
              "- \"No limit\" runs use a rate limit of 10^9: the fake always sends x-ratelimit-* headers (1,000 a "
              "minute when none is set), and the connector obeys them.",
              "- The Singer tap runs unthrottled and on the fake through bench/singer_shim.py; its streams are "
              "ordered smallest first. It searches (which sees only records updated in the last two years), so it "
              "reads fewer records than a full list; compare records/s, not totals.",
              "- Budget minimum = pages needed / (limit x usage share / window), as a steady rate. The fake's "
              "windows are fixed (a window opens at the first request after the last one closed), so a sync may "
              "burst its share at each window's start: the window-bound minimum, (ceil(pages / share per window) - 1) "
              "x window, is the least time that allows. The reset header is rounded up to the second, which can cost "
              "up to a second per window. The rate-limit target compares the wall time with the larger of the budget "
              "minimum and the unthrottled sync of the same data.", ""]
    generated = scrub("\n".join(lines))  # paths relative to the repository; none of a home or /tmp verbatim
    tried = f"{TRIED_HEADING}\n\n"
    if results.exists():
        text = results.read_text()
        if TRIED_HEADING in text:
            tried = text[text.index(TRIED_HEADING):]
    results.write_text(generated + "\n" + tried)
    return generated

