"""The raw floor: the same GET list pages a full sync reads, fetched with requests and parsed with orjson, nothing else.

    python bench/floor.py --base-url http://127.0.0.1:PORT [--threads 2] [--streams customers,messages,...]

Each list is read from page 1 at the largest page size (the server clamps 500 to each list's maximum) by following
`links.next`, and every page's JSON is parsed and its `data` counted; records are not reshaped or written anywhere.
`kobjects` lists the klasses first, then reads one list per klass. With --threads N, N threads (one
requests.Session each) take whole lists from a queue, biggest first, as the connector's N workers take streams.
Prints one JSON object: records, pages and bytes per stream, and the wall time.

With --as-records it is instead the least a Python connector of the CDK's shape does: each record is also reshaped
by the connector's own `flatten`, handed from its thread to the main thread one at a time through a queue of 10,000
(as the CDK hands them), and written to stdout as an Airbyte RECORD line (orjson, a megabyte per write); the JSON
summary comes last.
"""

from __future__ import annotations

import argparse
import ast
import json
import queue
import sys
import threading
import time
from pathlib import Path

import orjson
import requests

API_KEY = "test-api-key"  # integration_tests.fake_kustomer.API_KEY
LISTS = ["messages", "conversations", "customers", "users", "routing/work-items", "routing/work-sessions", "notes",
         "companies", "tags", "shortcuts", "kb/articles", "teams", "kb/categories", "routing/statuses", "snoozes",
         "slas", "routing/queues", "brands", "schedules", "satisfaction", "klasses"]  # about biggest first


def read_list(session: requests.Session, base_url: str, path: str, keep: list | None = None,
              emit=None) -> tuple[int, int, int]:
    """(records, pages, bytes) of one list; its records are appended to `keep` if given, passed to `emit` if given."""
    url, records, pages, size = f"{base_url}{path}?page=1&pageSize=500", 0, 0, 0
    while url:
        response = session.get(url, timeout=(30, 300))
        response.raise_for_status()
        body = response.content
        page = orjson.loads(body)
        data = page.get("data") or []
        records, pages, size = records + len(data), pages + 1, size + len(body)
        if keep is not None:
            keep.extend(data)
        if emit is not None:
            for record in data:
                emit(record)
        link = (page.get("links") or {}).get("next")
        url = f"{base_url}{link}" if link and data else None
    return records, pages, size


def connector_flatten():
    """The connector's own `flatten`, taken from its source: importing the components would import the CDK (1 s).
    It is in source_kustomer/components.py, or in a module of the package source_kustomer/components/."""
    package = Path(__file__).resolve().parent.parent / "source_kustomer"
    sources = [package / "components.py", *sorted((package / "components").glob("*.py"))]
    path, node = next((path, n) for path in sources if path.is_file() for n in ast.parse(path.read_text()).body
                      if isinstance(n, ast.FunctionDef) and n.name == "flatten")
    namespace: dict = {}
    exec(compile(ast.Module([node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["flatten"]


def write_records(records: queue.Queue, producers: int) -> None:
    """The main thread's part: each record as an Airbyte RECORD line, until every producer has finished."""
    out, pending = sys.stdout.buffer, bytearray()
    while producers:
        item = records.get()
        if item is None:
            producers -= 1
            continue
        message = {"type": "RECORD", "record": {"stream": item[0], "data": item[1], "emitted_at": time.time_ns() // 1_000_000}}
        pending += orjson.dumps(message) + b"\n"
        if len(pending) >= 1 << 20:
            out.write(pending)
            pending.clear()
    out.write(pending)
    out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--streams", default=",".join(LISTS + ["kobjects"]))
    parser.add_argument("--as-records", action="store_true", help="also flatten and write every record (see above)")
    args = parser.parse_args(argv)
    wanted = args.streams.split(",")
    base_url = args.base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}

    started = time.perf_counter()
    jobs: queue.Queue = queue.Queue()
    for stream in [s for s in LISTS if s in wanted and not (s == "klasses" and "kobjects" in wanted)]:
        jobs.put((stream, f"/v1/{stream}"))
    results: dict[str, list[int]] = {}
    lock = threading.Lock()
    if "kobjects" in wanted:  # the klasses list names the kobject lists; read once, it is also the klasses stream
        klasses: list[dict] = []
        with requests.Session() as session:
            session.headers.update(headers)
            got = read_list(session, base_url, "/v1/klasses", klasses)
        results["klasses" if "klasses" in wanted else "kobjects"] = [got[0] if "klasses" in wanted else 0, *got[1:]]
        for name in [k["attributes"]["name"] for k in klasses]:
            jobs.put(("kobjects", f"/v1/klasses/{name}"))
    errors: list[str] = []
    records: queue.Queue = queue.Queue(maxsize=10_000)
    flatten = connector_flatten() if args.as_records else None

    def worker() -> None:
        with requests.Session() as session:
            session.headers.update(headers)
            while True:
                try:
                    stream, path = jobs.get_nowait()
                except queue.Empty:
                    return
                emit = (lambda record, s=stream: records.put((s, flatten(record)))) if args.as_records else None
                try:
                    got = read_list(session, base_url, path, emit=emit)
                except Exception as error:  # reported, not raised: the run still says what it read
                    errors.append(f"{path}: {error!r}")
                    continue
                with lock:
                    totals = results.setdefault(stream, [0, 0, 0])
                    for i, value in enumerate(got):
                        totals[i] += value

    def run_worker() -> None:
        try:
            worker()
        finally:
            records.put(None)

    threads = [threading.Thread(target=run_worker) for _ in range(max(1, args.threads))]
    for thread in threads:
        thread.start()
    if args.as_records:
        write_records(records, len(threads))
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    summary = {
        "wall": wall, "threads": args.threads, "errors": errors,
        "records": sum(r[0] for r in results.values()), "pages": sum(r[1] for r in results.values()),
        "bytes": sum(r[2] for r in results.values()),
        "streams": {s: dict(zip(("records", "pages", "bytes"), r)) for s, r in sorted(results.items())},
    }
    json.dump(summary, sys.stdout)
    print()
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
