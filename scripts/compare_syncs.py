"""The records and states of full syncs by two builds of the connector against the same fake org, compared.

    python scripts/compare_syncs.py --old-ref 51b12a2            # that commit, built into build/compare/51b12a2/
    python scripts/compare_syncs.py --old path/to/source-kustomer  # or any executable of the connector
                                    [--new .venv/bin/source-kustomer]

Each build reads every stream of a fake org of the default size (a first incremental sync), then, after the same
changes to both orgs (updates, a creation, hard deletes), a second sync from its own state. The records of each sync
(per stream, as multisets, `emitted_at` left out) and the last state of every stream must be the same; times in a
state that fall within the build's own run (the sync's end, when a list position was taken) read `<run>`, as does the
CDK's `lookback_window` of a substream's state (the seconds its read took). The look-back of later searches is 0 for
both (an older build has none). Exit status 1 on any difference."""

import argparse
import json
import subprocess
import sys
import tarfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests import cli  # noqa: E402
from integration_tests.fake_kustomer import API_KEY, FakeKustomer, Faults  # noqa: E402

STAMP = "%Y-%m-%dT%H:%M:%S"


def build(ref: str) -> Path:
    """The connector of a git ref, installed into a virtualenv of its own under build/compare/<ref>/."""
    home = ROOT / "build" / "compare" / ref
    exe = home / "venv" / "bin" / "source-kustomer"
    if exe.exists():
        return exe
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    tarfile.open(fileobj=BytesIO(archive)).extractall(home / "src")
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    subprocess.run([str(home / "venv" / "bin" / "pip"), "install", "--quiet", str(home / "src")], check=True)
    return exe


def sync(exe: Path, server: FakeKustomer, catalog: dict, state=None) -> cli.Run:
    config = {"organization": "acme", "api_key": API_KEY, "base_url": server.url, "lookback_window_minutes": 0}
    run = cli.run("read", config, catalog, state, timeout=1800, executable=str(exe))
    if run.returncode != 0 or run.errors():
        raise SystemExit(f"{exe}: the sync failed: {run.errors()[:1]}")
    return run


def records(run: cli.Run) -> dict:
    found: dict = {}
    for record in run.of_type("RECORD"):
        found.setdefault(record["stream"], Counter())[json.dumps(record["data"], sort_keys=True)] += 1
    return found


def states(run: cli.Run, started: datetime) -> dict:
    """stream -> its last state, with times from `started` on (this run's own) as `<run>`."""
    def plain(node):
        if isinstance(node, dict):  # the CDK's `lookback_window` of a substream is how many seconds its read took
            return {key: "<run>" if key == "lookback_window" else plain(value) for key, value in node.items()}
        if isinstance(node, list):
            return [plain(value) for value in node]
        if isinstance(node, str) and len(node) >= 19 and node[4:5] == "-" and node[10:11] == "T":
            try:
                at = datetime.strptime(node[:19], STAMP).replace(tzinfo=timezone.utc)
            except ValueError:
                return node
            return "<run>" if at >= started - timedelta(minutes=2) else node
        return node
    return {m["stream"]["stream_descriptor"]["name"]: plain(m["stream"]["stream_state"]) for m in run.of_type("STATE")}


def change(server: FakeKustomer, at: datetime) -> None:
    data = server.dataset
    data.touch("customers", [c["id"] for c in data.all("customers")[:7]], at=at)
    data.touch("conversations", [c["id"] for c in data.all("conversations")[3:9]], at=at)
    data.create("messages", 4, at=at)
    data.delete("customers", [data.all("customers")[-1]["id"]], hard=True, at=at)
    data.delete("conversations", [data.all("conversations")[-1]["id"]], hard=True, at=at)


def both(old: Path, new: Path) -> list[str]:
    with FakeKustomer(faults=Faults(rate_limit=10**6)) as a, FakeKustomer(faults=Faults(rate_limit=10**6)) as b:
        config = {"organization": "acme", "api_key": API_KEY, "base_url": b.url}
        discovered = cli.run("discover", config, executable=str(new)).of_type("CATALOG")[0]
        catalog = cli.configured_catalog(discovered, incremental=True)
        started = datetime.now(timezone.utc)
        first = {"old": sync(old, a, catalog), "new": sync(new, b, catalog)}
        at = datetime.now(timezone.utc)
        change(a, at)
        change(b, at)
        time.sleep(65)  # the changes lie before every later sync's end, a minute before it starts
        second = {"old": sync(old, a, catalog, first["old"].final_states()),
                  "new": sync(new, b, catalog, first["new"].final_states())}
    differences = []
    for name, runs in (("first", first), ("second", second)):
        got = {side: records(run) for side, run in runs.items()}
        for stream in sorted(set(got["old"]) | set(got["new"])):
            old_rows, new_rows = got["old"].get(stream, Counter()), got["new"].get(stream, Counter())
            if old_rows != new_rows:
                differences.append(f"{name} sync, {stream}: {sum((old_rows - new_rows).values())} records only in "
                                   f"old, {sum((new_rows - old_rows).values())} only in new")
        old_states, new_states = (states(run, started) for run in runs.values())
        for stream in sorted(set(old_states) | set(new_states)):
            if old_states.get(stream) != new_states.get(stream):
                differences.append(f"{name} sync, {stream}: state {old_states.get(stream)} (old) != {new_states.get(stream)} (new)")
        print(f"{name} sync: {sum(sum(c.values()) for c in got['new'].values()):,} records, "
              f"{len(new_states)} streams' states compared")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--old", type=Path, help="the older build's source-kustomer executable")
    group.add_argument("--old-ref", help="a git ref to build the older connector from")
    parser.add_argument("--new", type=Path, default=ROOT / ".venv" / "bin" / "source-kustomer")
    args = parser.parse_args()
    old = args.old or build(args.old_ref)
    differences = both(old.resolve(), args.new.resolve())
    for line in differences:
        print(line)
    print("identical" if not differences else f"{len(differences)} differences")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
