"""--profile: one more full sync of the throughput scenario under py-spy, summarised by component and by function.

py-spy comes from the benchmark's own venv, bench/.venv-tools (bench/requirements.txt, created from PyPI on first
use). Raw stacks go to bench/out/profile.raw.txt, the summary to bench/out/profile.txt and the results.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.clients import ensure_venv
from bench.common import BENCH, OUT, scrub
from bench.harness import Connector, Server
from bench.measure import Measured

TOOLS_VENV = BENCH / ".venv-tools"


def profile(connector: Connector, server: Server, catalog: Path, seconds: float) -> tuple[Measured, list[str]]:
    python = ensure_venv(TOOLS_VENV, ["-r", str(BENCH / "requirements.txt")],
                         "import importlib.metadata as m; m.version('py-spy')")
    py_spy = str(python.with_name("py-spy"))
    raw = OUT / "profile.raw.txt"
    raw.unlink(missing_ok=True)
    server.reset()
    # py-spy starts the connector as its child (attaching to a running process needs more privileges). Stopped
    # with SIGINT after `seconds`: py-spy writes its samples and the connector exits.
    prefix = [py_spy, "record", "--nonblocking", "--rate", "100", "--format", "raw", "--output", str(raw), "--"]
    result = connector.read("source-kustomer under py-spy", server, catalog, tag="-profile", prefix=prefix,
                            timeout=seconds or None)
    return result, summarise_profile(raw)


# Where the connector's time goes: the first rule (in this order) that matches any frame of a sample's stack.
PROFILE_BUCKETS = [
    ("startup: imports, manifest, building the streams", r"importlib|get_attributes_doc|yaml/|_create_source|"
     r"model_to_component_factory|manifest_component_transformer|manifest_reference_resolver|pydantic|jsonschema|"
     r"ConcurrentDeclarativeSource\.(__init__|streams|_group_streams)"),
    ("records: the connector's own parse of each page + flatten (components: parse_once, JsonApiRecords; orjson)",
     r"parse_once|JsonApiRecords\.|flatten \(.*components\.py"),
    ("paginator: next link (NextLink, from the parsed page)",
     r"PaginationDecoderDecorator\.decode|NextLink\.next_page_token|CursorPaginationStrategy"),
    ("error handler: response filters parse the page again (stdlib json)",
     r"HttpResponseFilter\.|JsonErrorMessageParser|DefaultErrorHandler\.interpret_response"),
    ("cursor: updatedAt parsed per record (client-side incremental filter, state observe)",
     r"should_be_synced|state_converter|ConcurrentCursor\.observe|DatetimeParser|_strptime|MinMaxDatetime"),
    ("Jinja interpolation (other)", r"jinja2/|/interpolation/"),
    ("record pipeline glue (selector generators, Record objects, transformations)",
     r"record_selector\.py|record_filter\.py|transformations/"),
    ("hand-off of records from the workers to the main thread (Queue.put)", r"Queue\.put"),
    ("HTTP: requests, urllib3, sockets, backoff", r"requests/|urllib3/|socket\.py|http/client\.py|ssl\.py"),
    ("main thread: waiting on the record queue (idle, sampled as busy)", r"Condition\.wait|Queue\.get"),
    ("main thread: messages, state, serialisation, secret filter, print", r"airbyte_message_to_string|print_buffer|"
     r"serpyco_rs/_main|filter_secrets|concurrent_read_processor|_handle_item|entrypoint\.py|run\.py"),
]


def summarise_profile(raw: Path, top: int = 12) -> list[str]:
    """Sample shares per bucket above, and the functions with the most samples of their own."""
    if not raw.exists():
        return ["(py-spy wrote no profile: see bench/out/connector-*-profile.log)"]
    own, buckets, total = Counter(), Counter(), 0
    rules = [(label, re.compile(pattern)) for label, pattern in PROFILE_BUCKETS]

    def name(frame: str) -> str:
        m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
        function, path = (m[1], m[2]) if m else (frame, "")
        path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
        path = scrub(path)  # the connector's own files relative to the repository, no home or /tmp path
        return f"{function} ({path})"

    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        own[name(stack.split(";")[-1])] += int(count)
        buckets[next((label for label, rule in rules if rule.search(stack)), "other")] += int(count)
    if not total:
        return ["(empty profile)"]
    lines = [f"{total:,} samples (100 Hz, every thread, idle threads excluded)", "",
             "by component (first matching rule, in this order, over the whole stack):"]
    lines += [f"  {buckets[label] / total:6.1%}  {label}" for label, _ in PROFILE_BUCKETS + [("other", "")]
              if buckets[label]]
    lines += ["", "functions with the most samples of their own (C code counts for its Python caller):"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    (OUT / "profile.txt").write_text("\n".join(lines) + "\n")
    return lines

