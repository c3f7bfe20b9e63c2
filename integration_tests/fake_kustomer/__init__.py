"""A small fake of the Kustomer REST API (v1) for integration tests.

It mimics the wire behaviour in ../shared/reference/kustomer-api.md (paths relative to the repository root):
JSON:API-style envelopes, page/pageSize pagination with relative `links`, bearer-token auth and Kustomer-shaped error
bodies. Standard library only and deterministic: the same seed and sizes give byte-identical responses. Where that
reference and the recorded live responses (../shared/reference/real-payloads/) disagree, the defaults follow the
recordings:

- error bodies as recorded: `{"errors":[{"status":404,"code":"notfound","title":"Not Found"}]}`, and 400s
  `{"errors":[{"status":400,"source":{"parameter":"<name>"},"code":"badparam","title":"Bad Request","detail":…}]}`;
  every `status` an integer;
- a key lacking a role gets 401 with the very body of a bad key (Kustomer: "401 … missing role, invalid auth token,
  or billing feature"); only `GET /v1/auth/tokens/current`, 200 for any valid key, tells the two apart;
- every response carries `X-Ratelimit-Limit`, `X-Ratelimit-Remaining`, `X-Kustomer-Pod: prod1` and
  `Cache-Control: no-cache,private`, and never `X-Ratelimit-Reset` or `Retry-After`;
- the rate limit counts per fixed window of the clock (Kustomer's minute), not from a client's first request;
- search pages carry `meta.timed_out: false`.

Search (`POST /v1/customers/search`, and `/v1/customers/archive/search` for what search no longer sees) evaluates the
`and` criteria on `<ctx>_updated_at` / `<ctx>_created_at` (gte, gt, lte, lt, equals) and `<ctx>_id` (equals, in),
sorts by the first `sort` key then id, hides deleted records unless `includeDeleted`, sees only records updated in
the two years before the server's clock, and refuses pages past `search_page_cap` (a 400 badparam naming `page`).
`or` and `not` are accepted but not evaluated: they never narrow the result.

Conversation times by search: `queryContext: "conversation_time"` finds the very records of
`GET /v1/conversations/<id>/times`, every conversation's, across the org. Its attributes are
`conversation_time_created_at` (gte, gt, lte, lt, equals; sortable asc / desc, the default sort ascending) and
`conversation_time_conversation_id` (equals, in). Search sees only the times created in the two years before the
server's clock (createdAt, not updatedAt, which times lack); archive search has none of them ("older conversation
time data is not available via search"). Their index is made once and kept until the data changes.

Each conversation's times, events and forwards (`GET /v1/conversations/<id>/times`, `/events`, `/forwards`) are derived
from it, deterministically; an update of the conversation (touch) publishes a new event, add_forward adds a forward.

Routing, SLAs, knowledge base and settings, served like the other lists (page / pageSize, at most 100 a page, relative
links that echo the request's other query parameters before page and pageSize, e.g.
`/v1/routing/work-sessions?active=true&page=2&pageSize=100`; every GET list does that) and sized by DEFAULT_SIZES:
`GET /v1/routing/statuses`, `/v1/routing/work-sessions` (filters active, statusType, user), `/v1/routing/work-items`,
`/v1/slas`, `/v1/kb/articles`, `/v1/kb/categories`, `/v1/snoozes`, each also by id. Work sessions and work items are
also searchable: queryContext `work_session` / `work_item` with `<ctx>_updated_at` (time operators, sortable) and
`<ctx>_id`, under the same window, timed-out pages, index lag and refusals as the other contexts. Their shapes follow
Kustomer's attribute lists and two real event payloads of a third party (a `kustomer.work-session.update` and a
`kustomer.work-item.update` of Feb 2021, found in a public debug log; not Kustomer's documentation, and not kept in
the repository), Kustomer publishing no example for them; routing.py says
how they hang together (one open session per user at most, one non-completed work item per conversation at most,
milliseconds everywhere). `GET /v1/slas/<id>?versions=all` adds `included`: every version, an array when there are
several and a single object when there is one (as Kustomer's example), `versions=active` the current one;
`GET /v1/schedules/<id|default>?include=holidays` adds `included[]` of `holiday` records (the list ignores
`include`); `GET /v1/messages?include=attachments` (and a message search with ?include=attachments) adds `included[]`
of `attachment` records and the messages' `relationships.attachments`, and without it answers exactly as before;
`GET /v1/conversations/<id>/attachments` and `/v1/messages/<id>/attachments/<id>` serve them too. Conversations carry
doneCount, reopenCount, firstResponse, firstDone, lastDone, sla and the sla / slaVersion / queue relationships, by
the rules in analytics.py. The routing lists are made on first use (a Dataset that never serves them does not pay
for them), from the data as it was built. Faults name these lists `routing/work-sessions`, `routing/work-items`,
`routing/statuses` (or `routing-work-sessions`, ...), `slas`, `kb/articles`, `kb/categories`, `snoozes`, plus
`attachments` (the attachment endpoints, and any request that includes attachments) and `holidays` (a schedule
asked to include them).

Tests change the data between syncs with Dataset.touch / create / delete; the server's clock (`FakeKustomer(now=...)`)
is also the default time those stamp. Tests move that clock by assigning `fake.now` or with `fake.advance(seconds)`;
search reads it per request (its horizon, index_lag). The rate limit's windows use `fake.wall` instead (epoch seconds,
time.time unless replaced).

Faults (`FakeKustomer(faults=Faults(...))`, or assign `fake.faults` while it runs) make it misbehave like a real API on
a bad day: 5xx, resets, truncated or HTML bodies, latency, hangs, 429s from an org-wide window (optionally shared with
`others_per_window` requests of the org's agents), refusals of named lists (`forbidden`: 401, or 403 naming the role
with `refusal_status=403`; `missing`: 404; `bad_param`: 400), and `next` links or redirects to another host. All are
off by default, drawn from a seeded RNG, and counted in `fake.stats`. The other readings stay available as options:
`reset_header` "epoch" / "delta" / "on_429" sends `X-Ratelimit-Reset` (epoch seconds on every response, seconds from
now on every response, epoch seconds on 429s only), and `window_start="request"` opens a window at the first request
after the previous one ended.

Search's limits and the rate-limit counter (the defaults answer as described above):

- `search_window` (records; None) is Elasticsearch's max_result_window, on live Kustomer most likely 10,000. A page
  is served only if from + size <= search_window, from = (page - 1) * pageSize, size = pageSize after clamping to
  500: page * pageSize <= search_window. When set it replaces `search_page_cap`. A page past it, and every later one,
  is answered as `search_window_answer` says: "404" (default) notfound, as a fork of the Singer tap saw; "400"
  `{"errors":[{"status":400,"code":"illegal_argument_exception","title":"Bad Request","detail":"Result window is too
  large, from + size must be less than or equal to: [10000] but was [10500]. See the scroll api ..."}]}`; "500"
  internal_server_error. With these the last page inside still links to the next. "silent": that page and every
  later one are 200 with `data: []` and `links.next: null` (meta.total and totalPages still the full count), and the
  last page inside the window has its records but `links.next: null` too: a client that follows next links stops
  short, without an error. E.g. window 1,000 at pageSize 500: page 2 is the last inside, page 3 crosses.
- `timed_out_rate` (0.0): share of search pages answered 200 with `meta.timed_out: true` and only the first half of
  the page's records (len // 2); total and links as for the whole page. Each search request that reaches search
  draws once, from a generator of its own seeded by `seed` (restarted when `fake.faults` is assigned), so the same
  sequence of requests meets the same timed-out pages and serve()'s three draws per request are not shifted. It
  applies to handle() too.
- `index_lag` (0.0 seconds): search (and archive search) sees a record only once the server's clock is at least
  index_lag seconds past its updatedAt (conversation times: createdAt): a change becomes searchable that long after
  it is stamped, and a record stamped in the clock's future only once the clock has passed it by index_lag. GET lists
  are unaffected. With 0 nothing is hidden, future stamps included.
- `remaining` ("counted"): X-Ratelimit-Remaining is the limit minus what the window counted (0 on a 429);
  "constant": X-Ratelimit-Limit minus one on every response, 429s included (a counter that never falls);
  "alternating": two pods behind a load balancer take the responses in turn, each counting the requests it served
  in the window and showing the limit minus its own count, 429s included; the org's other users' requests
  (others_per_window) all went through the first pod. Alone, with no others, a client sees 999, 999, 998, 998 ...
  (half the real fall); with others_per_window = N the value goes up and down by about N between consecutive
  responses (1000 - N - 1, 999, 1000 - N - 2, 998 ...). The 429s are decided on the org's real count whatever the
  form.
- `refuse_contexts` (none): queryContexts search refuses, e.g. {"conversation_time"}, answered as
  `refuse_context_status` says: 401 (default) the bad key's body, 403 naming the missing role, 404 notfound, 400
  badparam "Unknown queryContext". Other contexts are served.

    python -m integration_tests.fake_kustomer --port 8585 [--scale 1.0] [--error-rate 0.1] [--rate-limit 300]
        [--reset-header none|epoch|delta|on_429] [--forbidden notes,search --refusal-status 401|403]
        [--remaining counted|constant|alternating] [--search-window 10000 --search-window-answer 404|400|500|silent]
        [--timed-out-rate 0.1] [--index-lag 30] [--refuse-contexts conversation_time --refuse-context-status 403]

Modules (imports go one way, down this list): wire (key, names, timestamps, error bodies, paging), shapes (sizes,
custom attributes, value pools), store (mutations, sorted indexes, deferred streams), derived (conversation times,
events, forwards, message attachments), routing (statuses, work sessions, work items), configuration (SLAs and their
versions, snoozes, knowledge base, holidays), analytics (conversations' response, done and SLA fields), data (Dataset
and its generation), faults (Faults, canned answers), rate_limits (windows, headers, 429s),
search, transport (the HTTP handler, Reply), server (FakeKustomer: routing, lists), command_line (main). Their tests:
tests/.
"""

from __future__ import annotations

import json
import sys
import types

from . import search as _search_module
from . import server as _server_module
from .command_line import main
from .data import Dataset
from .faults import (CANNED, CONTEXT_REFUSALS, FAULT_KINDS, REMAINING_FORMS, RESET_HEADERS, SEARCH_WINDOW_ANSWERS,
                     WINDOW_STARTS, Faults)
from .rate_limits import DEFAULT_RATE_LIMIT, TOO_MANY, Stats, Window
from .search import SEARCH_HORIZON, TIME_OPERATORS
from .server import FakeKustomer
from .analytics import draws
from .shapes import (AUDIT_OBJECTS, CHANNELS, COLORS, CREATED_FROM, DEFAULT_KLASS, DEFAULT_SIZES, FIRST, KLASS_FIELDS,
                     LAST, MAX_AGE, METADATA, METADATA_DETAILS, OLD, ORG_CREATED, ROUTING_STATUSES, SLA_FIRST_RESPONSE,
                     SYSTEM_STATUSES, UNSCALED, UPDATED_FROM, UPDATED_TO, WORDS, WORK_ITEM_STATUSES, scaled_sizes)
from .store import Resources, SortedIndex, stamp_of
from .transport import Reply, _Handler
from .wire import (API_KEY, CONVERSATION_TIME, DEFAULT_PAGE_SIZE, ELSEWHERE, EPOCH, HTML_TYPE, JSON_TYPE, LIST_ALIASES,
                   LIST_NAMES, MAX_PAGE_SIZE, MAX_SEARCH_PAGE_SIZE, NOT_FOUND, PLURALS, POD_HEADERS, ROUTING_CONTEXTS,
                   SEARCH_CONTEXTS, SEARCH_PATHS, STAMP, STREAM_TYPES, UNAUTHORIZED, WRONG_REGION_KEY, BadRequest,
                   _parse_stamp, business_ms, epoch_ms, error_body, included_names, iso, list_name, micros,
                   next_link, parse_stamp, rel)

__all__ = [
    "LIST_ALIASES", "METADATA_DETAILS", "ROUTING_CONTEXTS", "ROUTING_STATUSES", "Resources", "SLA_FIRST_RESPONSE",
    "SYSTEM_STATUSES", "WORK_ITEM_STATUSES", "business_ms", "draws", "included_names", "next_link",
    "API_KEY", "AUDIT_OBJECTS", "BadRequest", "CANNED", "CHANNELS", "COLORS", "CONTEXT_REFUSALS", "CONVERSATION_TIME",
    "CREATED_FROM", "DEFAULT_KLASS", "DEFAULT_PAGE_SIZE", "DEFAULT_RATE_LIMIT", "DEFAULT_SIZES", "Dataset", "ELSEWHERE",
    "EPOCH", "FAULT_KINDS", "FIRST", "FakeKustomer", "Faults", "HTML_TYPE", "JSON_TYPE", "KLASS_FIELDS", "LAST",
    "LIST_NAMES", "MAX_AGE", "MAX_PAGE_SIZE", "MAX_SEARCH_PAGE_SIZE", "METADATA", "NOT_FOUND", "OLD", "ORG_CREATED",
    "PLURALS", "POD_HEADERS", "REMAINING_FORMS", "RESET_HEADERS", "Reply", "SEARCH_CONTEXTS", "SEARCH_HORIZON",
    "SEARCH_PATHS", "SEARCH_WINDOW_ANSWERS", "STAMP", "STREAM_TYPES", "SortedIndex", "Stats", "TIME_OPERATORS",
    "TOO_MANY", "UNAUTHORIZED", "UNSCALED", "UPDATED_FROM", "UPDATED_TO", "WINDOW_STARTS", "WORDS", "WRONG_REGION_KEY",
    "Window", "_Handler", "_parse_stamp", "epoch_ms", "error_body", "iso", "json", "list_name", "main", "micros",
    "parse_stamp", "rel", "scaled_sizes", "stamp_of",
]


class _Package(types.ModuleType):
    """bench/server.py swaps the serialiser with `fake_kustomer.json = ...` (orjson for dumps), as it did when the
    fake was one module: the modules that serialise follow the package's `json`."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name == "json":
            _server_module.json = _search_module.json = value


sys.modules[__name__].__class__ = _Package
