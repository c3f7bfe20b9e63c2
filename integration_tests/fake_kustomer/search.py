"""Search (`POST /v1/customers/search`, and `/v1/customers/archive/search` for what search no longer sees): the
queryContexts, the evaluation of criteria and sort over Dataset's sorted indexes, and search's limits (the page cap
or Faults.search_window, meta.timed_out, index lag, refused contexts).

Result window (Faults.search_window = W, records): Elasticsearch serves a page only if from + size <= W, where
from = (page - 1) * pageSize and size = the pageSize after clamping to 500; i.e. page * pageSize <= W. At W = 1,000
and pageSize 500, pages 1 and 2 are inside and page 3 (from 1,000 + size 500 = 1,500) crosses. A crossing page (and so
every later one) is answered per Faults.search_window_answer: "404" notfound, "400" with Elasticsearch's message
(no `source.parameter`, and no word "page" in it), "500" internal error, each with the last page inside still linking
to it (as the page cap does); or "silent": 200 with `data: []` and `links.next: null` but the full meta.total and
totalPages, and the last page inside the window also has `links.next: null` (it holds its records), so a client
that trusts next links stops short without an error. A page that crosses is refused whatever the total: with 1,000
matches at pageSize 300, page 4 (900 + 300 > 1,000) crosses although only 100 records are left."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .data import Dataset
from .faults import CANNED, Faults
from .store import stamp_of
from .wire import (CONVERSATION_TIME, MAX_SEARCH_PAGE_SIZE, NOT_FOUND, ROUTING_CONTEXTS, SEARCH_CONTEXTS, UNAUTHORIZED,
                   BadRequest, error_body, micros, next_link, paging, parse_stamp)

SEARCH_HORIZON = timedelta(days=730)  # search sees two years back; archive search the rest
TIME_OPERATORS = ("gte", "gt", "lte", "lt", "equals")
WINDOW_ERROR = ("Result window is too large, from + size must be less than or equal to: [{window}] but was [{asked}]. "
                "See the scroll api for a more efficient way to request large data sets.")


@dataclass(frozen=True)
class Context:
    """What one queryContext searches."""
    stream: str  # the Dataset stream key of its records (Dataset.index)
    times: dict  # search attribute -> the records' timestamp attribute: filtered with TIME_OPERATORS, sortable
    id_attr: str  # the search attribute filtered with equals / in
    id_of: Callable[[dict], str]  # a record's value of id_attr
    seen_by: str = "updatedAt"  # the timestamp the two-year horizon, the index lag and the default sort apply to
    archived: bool = True  # whether archive search holds its records older than the horizon


def context_of(dataset: Dataset, name) -> Context:
    """The Context of a queryContext: customer, conversation, message, note, company, kobject (every klass),
    kobject_<klass>, conversation_time, work_session, work_item; a 400 for anything else."""
    if name == CONVERSATION_TIME:  # every conversation's times; the OpenAPI: older ones are not in search at all
        return Context("conversation-times", {"conversation_time_created_at": "createdAt"},
                       "conversation_time_conversation_id", lambda r: r["relationships"]["conversation"]["data"]["id"],
                       seen_by="createdAt", archived=False)
    if isinstance(name, str) and name in ROUTING_CONTEXTS:  # only updatedAt: no `<ctx>_created_at` is known to exist
        return Context(ROUTING_CONTEXTS[name], {f"{name}_updated_at": "updatedAt"}, f"{name}_id", lambda r: r["id"])
    if isinstance(name, str) and name in SEARCH_CONTEXTS:  # a list, say, is no context either
        stream, prefix = SEARCH_CONTEXTS[name], name
    elif name == "kobject":
        stream, prefix = "kobjects", "kobject"
    elif isinstance(name, str) and name.startswith("kobject_") and name.removeprefix("kobject_") in dataset.kobjects:
        stream, prefix = f"kobject.{name.removeprefix('kobject_')}", "kobject"
    else:
        detail = "queryContext is required" if name is None else f"Unknown queryContext {json.dumps(name)}"
        raise BadRequest(detail, "queryContext")
    return Context(stream, {f"{prefix}_updated_at": "updatedAt", f"{prefix}_created_at": "createdAt"}, f"{prefix}_id",
                   lambda r: r["id"])


def refusal(name: str, status: int) -> tuple[int, dict]:
    """How a queryContext in Faults.refuse_contexts is answered."""
    if status == 400:  # as if the org had no such context
        return 400, BadRequest(f"Unknown queryContext {json.dumps(name)}", "queryContext").body
    if status == 401:  # Kustomer's reading of a missing role (or billing feature): the body of a bad key
        return 401, UNAUTHORIZED
    if status == 403:
        role = ("kobject" if name.startswith("kobject") else "conversation" if name == CONVERSATION_TIME
                else "routing" if name == "work_item" else name)
        return 403, error_body(403, "forbidden", "Forbidden", f"Missing role org.permission.{role}.read")
    return 404, NOT_FOUND


def window_refusal(answer: str, window: int, asked: int) -> tuple[int, dict]:
    """A page past Faults.search_window, unless the answer is "silent"; `asked` = from + size."""
    if answer == "400":  # the code is a guess: Elasticsearch's root cause; no source.parameter, as nothing names one
        return 400, error_body(400, "illegal_argument_exception", "Bad Request",
                               WINDOW_ERROR.format(window=window, asked=asked))
    if answer == "500":
        return 500, CANNED["500"][2]
    return 404, NOT_FOUND


def search(dataset: Dataset, query: dict[str, str], body: bytes, path: str, archive: bool, *, now: datetime,
           page_cap: int, faults: Faults, timed_out: bool = False) -> tuple[int, dict]:
    """(status, JSON body) of one search page; a malformed request raises BadRequest. `now`: the server's clock;
    `page_cap`: the last page served when Faults.search_window is None; `timed_out`: answer this page as a timed-out
    one (meta.timed_out true, the first half of its records: len // 2)."""
    page, size = paging(query, MAX_SEARCH_PAGE_SIZE)
    window = faults.search_window
    if window is None and page > page_cap:  # page `cap` still links to page cap + 1; only fetching it fails
        raise BadRequest(f"Search is limited to {page_cap} pages; narrow the query", "page")
    try:
        spec = json.loads(body or b"{}")
    except ValueError:
        spec = None
    if not isinstance(spec, dict):
        raise BadRequest("The request body must be a JSON object", "body")
    name = spec.get("queryContext")
    if isinstance(name, str) and name in faults.refuse_contexts:
        return refusal(name, faults.refuse_context_status)
    context = context_of(dataset, name)
    sort_attr, desc = sort_of(spec.get("sort"), context.times, context.seen_by)
    bounds, ids = criteria_of(spec.get("and"), context.times, context.id_attr)
    crosses = window is not None and page * size > window  # from + size > max_result_window
    silent = window is not None and faults.search_window_answer == "silent"
    if crosses and not silent:
        return window_refusal(faults.search_window_answer, window, page * size)

    horizon = micros(now - SEARCH_HORIZON)  # read per request: a long test sees records age out
    lo, hi = bounds[context.seen_by]
    if archive and not context.archived:
        lo, hi = math.inf, -math.inf
    elif archive:
        hi = min(hi, horizon - 1)
    else:
        lo = max(lo, horizon)
    if faults.index_lag > 0:  # a change is searchable index_lag seconds after its time, not before
        hi = min(hi, micros(now) - round(faults.index_lag * 1_000_000))
    bounds[context.seen_by] = lo, hi

    index = dataset.index(context.stream, sort_attr, desc, spec.get("includeDeleted") is True)
    start, end = index.window(*bounds.pop(sort_attr))
    checks = [lambda r, a=a, low=low, high=high: low <= stamp_of(r, a) <= high
              for a, (low, high) in bounds.items() if (low, high) != (-math.inf, math.inf)]
    if ids is not None:
        checks.append(lambda r: context.id_of(r) in ids)
    offset = (page - 1) * size
    if checks:  # a filter the index does not order by: scan the indexed range
        matched = [r for r in index.records[start:end] if all(check(r) for check in checks)]
        total, data = len(matched), matched[offset:offset + size]
    else:  # the common keyset query: no scan, just a slice
        total, data = end - start, index.records[start + offset:min(start + offset + size, end)]
    if crosses:  # silent: no records past the window, however many match
        data = []
    if timed_out:
        data = data[:len(data) // 2]

    def link(p: int) -> str:  # the other query parameters (include=attachments, say) first; never the body
        return next_link(path, query, p, size)

    pages = -(-total // size)  # the full count, even past the page cap, as Kustomer reports it
    more = offset + size < total and not (silent and (page + 1) * size > window)
    meta = {"pageSize": size, "page": page, "total": total, "totalPages": pages, "aggregations": {},
            "timed_out": timed_out}
    links = {"self": link(page), "first": link(1), "prev": link(page - 1) if page > 1 else None,
             "next": link(page + 1) if more else None, "last": link(max(pages, 1))}
    return 200, {"meta": meta, "links": links, "data": data}


def sort_of(sort, attributes: dict[str, str], default: str) -> tuple[str, bool]:
    """(attribute, descending) of the first sort key: the real API is reported to apply only the first. No sort:
    `default` ascending."""
    sort = [sort] if isinstance(sort, dict) else sort or []
    if not isinstance(sort, list) or not all(isinstance(key, dict) and len(key) == 1 for key in sort):
        raise BadRequest('sort must be a list of {"<attribute>": "asc" | "desc"}', "sort")
    if not sort:
        return default, False
    [(name, direction)] = sort[0].items()
    if name not in attributes:
        raise BadRequest(f"Unknown sort attribute '{name}'", name)
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Sort direction of '{name}' must be asc or desc", name)
    return attributes[name], direction == "desc"


def criteria_of(criteria, attributes: dict[str, str], id_attr: str):
    """Inclusive epoch-microsecond bounds per timestamp attribute, and the wanted ids (None: any)."""
    criteria = [{k: v} for k, v in criteria.items()] if isinstance(criteria, dict) else criteria or []
    if not isinstance(criteria, list):
        raise BadRequest("and must be a list of criteria", "and")
    bounds = {attr: (-math.inf, math.inf) for attr in attributes.values()}
    ids = None
    for criterion in criteria:
        if not isinstance(criterion, dict):
            raise BadRequest('Each criterion must be {"<attribute>": {"<operator>": value}}', "and")
        for name, condition in criterion.items():
            if name in ("and", "or", "not"):  # nested groups are not evaluated (see the package docstring)
                continue
            if name not in attributes and name != id_attr:
                raise BadRequest(f"Unknown search attribute '{name}'", name)
            if not isinstance(condition, dict) or not condition:
                raise BadRequest(f"'{name}' needs an operator, as in {{\"{name}\": {{\"gte\": ...}}}}", name)
            for op, value in condition.items():
                if name == id_attr:
                    values = [value] if op == "equals" else value if op == "in" else None
                    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                        raise BadRequest(f"'{name}' supports equals (an id) and in (a list of ids), not '{op}'",
                                         name)
                    ids = set(values) if ids is None else ids & set(values)
                    continue
                if op not in TIME_OPERATORS:
                    raise BadRequest(f"Unknown operator '{op}' for '{name}' (use {', '.join(TIME_OPERATORS)})",
                                     name)
                if (t := parse_stamp(value)) is None:
                    raise BadRequest(f"'{name}' {op} needs a timestamp like 2024-01-31T00:00:00.000Z or "
                                     f"2024-01-31, not {json.dumps(value)}", name)
                lo, hi = bounds[attributes[name]]
                if op in ("gte", "gt", "equals"):
                    lo = max(lo, t + (op == "gt"))  # integer microseconds: gt t is gte t + 1
                if op in ("lte", "lt", "equals"):
                    hi = min(hi, t - (op == "lt"))
                bounds[attributes[name]] = lo, hi
    return bounds, ids
