"""Faults, rate limits and refusals: serve() over HTTP and without a socket."""

import http.client as http_client
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from integration_tests.fake_kustomer import FAULT_KINDS, Dataset, FakeKustomer, Faults, main
from integration_tests.fake_kustomer.tests.common import (AUTH, MINUTE, NEVER, RATE_HEADERS, RECORDED, SMALL, call,
                                                          get)


def test_faults_are_off_by_default_and_every_response_carries_the_recorded_headers(faulty, http):
    fake = faulty()
    answers = [http.get(fake.url + "/v1/customers?pageSize=2"), http.get(fake.url + "/v1/customers?pageSize=0"),
               http.post(fake.url + "/v1/customers", json={}), http.post(fake.url + "/v1/customers/search",
                                                                          json={"queryContext": "customer"}),
               requests.get(fake.url + "/v1/tags"), http.get(fake.url + "/not-the-api")]
    assert [a.status_code for a in answers] == [200, 400, 405, 200, 401, 404]
    assert all(name in a.headers for a in answers for name in RATE_HEADERS)
    assert all(a.headers[name] == value for a in answers for name, value in RECORDED.items())
    assert not any(name in a.headers for a in answers for name in NEVER)  # as recorded: no reset, no Retry-After
    # The real API's default budget: the four authorized /v1 requests count down, the 401 and the non-API 404 don't.
    assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["999", "998", "997", "996", "996", "996"]
    assert {a.headers["X-Ratelimit-Limit"] for a in answers} == {"1000"}
    assert fake.stats.requests == 6 and not fake.stats.faults and fake.stats.rate_limited == 0
    assert [(w.start, w.served, w.searches, w.others) for w in fake.stats.windows] == [(MINUTE, 4, 1, 0)]
    conn = http_client.HTTPConnection(fake.host, fake.port, timeout=5)
    conn.request("GET", "/v1/brands", headers=AUTH)
    response = conn.getresponse()
    response.read()
    conn.close()
    # Spelled on the wire as recorded (requests' headers ignore case, so check the raw names).
    assert {*RATE_HEADERS, *RECORDED} <= {name for name, _ in response.getheaders()}


def test_the_command_line_takes_the_new_forms_and_refuses_unknown_names(capsys):
    with pytest.raises(SystemExit):
        main(["--reset-header", "on_429", "--refusal-status", "403", "--forbidden", "notes,note"])
    assert "unknown list names ['note']" in capsys.readouterr().err  # a usage error, not a traceback
    with pytest.raises(SystemExit):
        main(["--reset-header", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_fault_settings_are_checked():
    assert Faults(forbidden="notes", error_kinds="reset").forbidden == frozenset({"notes"})
    with pytest.raises(ValueError, match="note"):
        Faults(forbidden={"note"})  # singular: a typo that would otherwise switch nothing on
    with pytest.raises(ValueError, match="404"):
        Faults(error_kinds=("500", "404"))
    with pytest.raises(ValueError, match="audit_logs"):
        Faults(missing={"audit_logs"})
    with pytest.raises(ValueError, match="tag"):
        Faults(bad_param="tag")
    with pytest.raises(ValueError, match="402"):
        Faults(refusal_status=402)
    with pytest.raises(ValueError, match="on_429"):
        Faults(reset_header="on429")
    with pytest.raises(ValueError, match="request"):
        Faults(window_start="first")
    with pytest.raises(ValueError, match="others_per_window"):
        Faults(others_per_window=-1)


@pytest.mark.parametrize("kind, status, content_type, looks_like", [
    ("500", 500, "application/json", '"code": "internal_server_error"'),
    ("502", 502, "text/html", "502 Bad Gateway"),  # from the load balancer: HTML, not Kustomer's errors body
    ("503", 503, "application/json", '"code": "service_unavailable"'),
    ("html", 200, "text/html", "<html>maintenance</html>"),
])
def test_error_faults_answer_with_their_status_and_body(faulty, http, kind, status, content_type, looks_like):
    fake = faulty(error_rate=1.0, error_kinds=(kind,))
    response = http.get(fake.url + "/v1/customers")
    assert response.status_code == status and response.headers["Content-Type"].startswith(content_type)
    assert looks_like in response.text and all(name in response.headers for name in RATE_HEADERS)
    if content_type == "text/html":
        with pytest.raises(requests.JSONDecodeError):
            response.json()
    assert fake.requests_log[-1]["fault"] == kind and fake.requests_log[-1]["status"] == status
    # Answered before the API: the rate limiter never counted it, so a retry gets the full budget and the data.
    assert response.headers["X-Ratelimit-Remaining"] == "1000" and fake.stats.windows[-1].served == 0
    fake.faults.error_rate = 0
    retry = http.get(fake.url + "/v1/customers")
    assert retry.status_code == 200 and len(retry.json()["data"]) == 5 and fake.stats.faults == {kind: 1}


def test_reset_closes_the_connection_without_an_answer(faulty, http):
    fake = faulty(error_rate=1.0, error_kinds=("reset",))
    with pytest.raises(requests.ConnectionError):
        http.get(fake.url + "/v1/customers")
    conn = http_client.HTTPConnection(fake.host, fake.port, timeout=5)
    conn.request("GET", "/v1/customers", headers=AUTH)
    with pytest.raises(ConnectionResetError):  # also covers http.client.RemoteDisconnected
        conn.getresponse()
    conn.close()
    assert fake.stats.faults == {"reset": 2} and "status" not in fake.requests_log[-1]
    fake.faults.error_rate = 0
    assert http.get(fake.url + "/v1/customers").status_code == 200  # the session reconnects


def test_truncated_sends_half_the_real_body_under_the_full_content_length(faulty, http):
    fake = faulty(error_rate=1.0, error_kinds=("truncated",))
    conn = http_client.HTTPConnection(fake.host, fake.port, timeout=5)
    conn.request("GET", "/v1/customers?pageSize=2", headers=AUTH)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("X-Ratelimit-Remaining") == "1000"
    with pytest.raises(http_client.IncompleteRead) as cut:
        response.read()
    conn.close()
    with pytest.raises(ValueError):
        json.loads(cut.value.partial)
    # requests checks Content-Length: a client sees ChunkedEncodingError, not a JSON error.
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(fake.url + "/v1/customers?pageSize=2")
    fake.faults.error_rate = 0
    whole = http.get(fake.url + "/v1/customers?pageSize=2")
    assert int(response.getheader("Content-Length")) == len(whole.content) == 2 * len(cut.value.partial) + 1
    assert whole.content.startswith(cut.value.partial)  # the same data the retry gets


def test_error_rate_is_roughly_honoured_and_the_same_seed_meets_the_same_faults():
    def run(fake, n=1000):
        start = len(fake.requests_log)
        for _ in range(n):
            call(fake, "GET", "/v1/brands")
        return [entry.get("fault") for entry in fake.requests_log[start:]]

    fake = FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, seed=5))
    fake.wall = lambda: MINUTE + 30  # all in one window
    drawn = run(fake)
    faulted = [kind for kind in drawn if kind]
    assert 250 <= len(faulted) <= 350 and set(faulted) == set(FAULT_KINDS)
    assert fake.stats.faults == Counter(faulted) and fake.stats.windows[-1].served == 1000 - len(faulted)
    assert run(FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, seed=5))) == drawn
    assert run(FakeKustomer(Dataset(SMALL), faults=Faults(error_rate=0.3, seed=6))) != drawn
    fake.faults = Faults(error_rate=0.3, seed=5)  # assigning restarts the sequence
    assert run(fake) == drawn
    fake.faults = Faults(error_rate=0.3, error_kinds=("503",), seed=5)
    assert [kind and "503" for kind in drawn] == run(fake)  # the kinds narrow what is drawn, not where
    fake.faults = Faults(error_rate=0.3, seed=5, slow_rate=0.001, slow_seconds=0.001)
    assert run(fake) == drawn  # nor does switching another fault on


def test_429_after_the_limit_and_a_fresh_budget_at_the_next_minute_of_the_clock(faulty, http):
    fake = faulty(rate_limit=3)  # 60 s windows of the clock, as Kustomer counts its minute
    fake.wall = lambda: MINUTE + 45
    first = [http.get(fake.url + "/v1/tags?pageSize=2") for _ in range(3)]
    assert [r.status_code for r in first] == [200] * 3
    assert [r.headers["X-Ratelimit-Remaining"] for r in first] == ["2", "1", "0"]
    refused = [http.get(fake.url + "/v1/tags?pageSize=2") for _ in range(2)]
    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].json() == {"errors": [{"status": 429, "code": "too_many_requests", "title": "Too Many Requests",
                                             "detail": "Rate limit exceeded"}]}
    assert refused[0].headers["X-Ratelimit-Limit"] == "3" and refused[0].headers["X-Ratelimit-Remaining"] == "0"
    assert not any(name in r.headers for r in refused for name in NEVER)  # nothing says when to come back
    fake.wall = lambda: MINUTE + 59.999  # the same minute: still refused
    assert http.get(fake.url + "/v1/tags?pageSize=2").status_code == 429
    fake.wall = lambda: MINUTE + 60  # the next minute, only 15 s after the first request: the whole budget again
    again = http.get(fake.url + "/v1/tags?pageSize=2")
    assert again.status_code == 200 and again.headers["X-Ratelimit-Remaining"] == "2"
    stats = fake.stats
    assert [(w.start, w.served) for w in stats.windows] == [(MINUTE, 3), (MINUTE + 60, 1)]
    assert stats.max_per_window == 3 and stats.rate_limited == 3
    assert [e["status"] for e in fake.requests_log] == [200, 200, 200, 429, 429, 429, 200]


def test_request_windows_open_at_the_first_request_after_the_last_one_ended():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=3, window_start="request", reset_header="epoch"))
    fake.wall = lambda: MINUTE + 45
    answers = [call(fake, "GET", "/v1/tags") for _ in range(4)]
    fake.wall = lambda: MINUTE + 60  # a new minute of the clock, but this window runs until MINUTE + 105
    answers.append(call(fake, "GET", "/v1/tags"))
    fake.wall = lambda: MINUTE + 105
    answers.append(call(fake, "GET", "/v1/tags"))
    assert [a.status for a in answers] == [200, 200, 200, 429, 429, 200]
    assert [a.headers["X-Ratelimit-Reset"] for a in answers] == [str(int(MINUTE + 105))] * 5 + [str(int(MINUTE + 165))]
    assert [(w.start, w.served) for w in fake.stats.windows] == [(MINUTE + 45, 3), (MINUTE + 105, 1)]


@pytest.mark.parametrize("form, on_200, on_429", [
    ("none", None, None),  # as recorded
    ("epoch", str(int(MINUTE + 60)), str(int(MINUTE + 60))),  # the end of the minute, on every response
    ("delta", "16", "16"),  # 15.5 s to the end of the minute, rounded up: waiting that long finds it open
    ("on_429", None, str(int(MINUTE + 60))),
])
def test_reset_header_forms(form, on_200, on_429):
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=1, reset_header=form))
    fake.wall = lambda: MINUTE + 44.5
    ok, refused = call(fake, "GET", "/v1/brands"), call(fake, "GET", "/v1/brands")
    assert (ok.status, refused.status) == (200, 429)
    assert (ok.headers.get("X-Ratelimit-Reset"), refused.headers.get("X-Ratelimit-Reset")) == (on_200, on_429)
    assert "Retry-After" not in ok.headers | refused.headers


def test_other_users_requests_count_into_each_window_as_it_opens():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=10, others_per_window=7))
    fake.wall = lambda: MINUTE + 10
    first = [call(fake, "GET", "/v1/tags") for _ in range(4)]
    # The agents used 7 of the org's 10: only 3 are ours, and the headers say so from the first answer.
    assert [r.status for r in first] == [200, 200, 200, 429]
    assert [r.headers["X-Ratelimit-Remaining"] for r in first] == ["2", "1", "0", "0"]
    fake.wall = lambda: MINUTE + 70  # the next minute: the agents are back with it
    assert call(fake, "GET", "/v1/tags").headers["X-Ratelimit-Remaining"] == "2"
    assert [(w.others, w.served) for w in fake.stats.windows] == [(7, 3), (7, 1)]
    fake.faults = Faults(others_per_window=400)  # no limit enforced: the headers still show the shared budget
    fake.wall = lambda: MINUTE + 130
    assert call(fake, "GET", "/v1/tags").headers["X-Ratelimit-Remaining"] == str(1000 - 400 - 1)


def test_searches_have_their_own_limit_inside_the_org_wide_one():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(rate_limit=6, search_rate_limit=2))
    fake.wall = lambda: MINUTE + 30  # all in one window
    body = {"queryContext": "customer"}
    statuses = [call(fake, "POST", "/v1/customers/search", body).status,
                call(fake, "POST", "/v1/customers/archive/search", body).status]
    over = call(fake, "POST", "/v1/customers/search", body)
    assert statuses == [200, 200] and over.status == 429
    assert over.headers["X-Ratelimit-Limit"] == "2" and over.headers["X-Ratelimit-Remaining"] == "0"
    assert json.loads(over.body)["errors"][0]["code"] == "too_many_requests"
    gets = [call(fake, "GET", "/v1/tags") for _ in range(5)]  # searches used 2 of the org's 6
    assert [r.status for r in gets] == [200] * 4 + [429] and gets[-1].headers["X-Ratelimit-Limit"] == "6"
    assert call(fake, "GET", "/v1/customers/search").status == 429  # a GET (405) is no search but counts org-wide
    assert fake.stats.max_searches_per_window == 2 and fake.stats.max_per_window == 6
    assert fake.stats.rate_limited == 3


def test_the_rate_limit_holds_under_concurrent_clients(faulty):
    fake = faulty(rate_limit=50, rate_window=60)

    def client(_):
        with requests.Session() as session:
            return [session.get(fake.url + "/v1/brands", headers=AUTH).status_code for _ in range(20)]

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(s for run in pool.map(client, range(8)) for s in run)
    assert statuses == {200: 50, 429: 110}
    assert fake.stats.windows[0].served == 50 and fake.stats.rate_limited == 110 and fake.stats.requests == 160


@pytest.mark.parametrize("name, refused, still_served, role", [
    ("notes", ["/v1/notes", "/v1/notes/{note}"], ["/v1/messages", "/v1/users/current"], "note.read"),
    ("users", ["/v1/users"], ["/v1/users/current", "/v1/teams"], "user.read"),
    ("kobjects", ["/v1/klasses/order", "/v1/klasses/subscription/{kobject}"], ["/v1/klasses", "/v1/klasses/{klass}"],
     "kobject.read"),
    ("klasses", ["/v1/klasses", "/v1/klasses/{klass}"], ["/v1/klasses/order"], "klass.read"),
    ("search", ["POST /v1/customers/search", "POST /v1/customers/archive/search"], ["/v1/customers"], "search.create"),
])
def test_forbidden_lists_are_401_like_a_bad_key_or_403_naming_the_missing_role(name, refused, still_served, role):
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(forbidden={name}))
    ds = fake.dataset
    ids = {"note": ds.resources["notes"][0]["id"], "kobject": ds.kobjects["subscription"][0]["id"],
           "klass": ds.resources["klasses"][0]["id"]}

    def status(request):
        method, _, path = request.rpartition(" ")
        return fake.handle(method or "GET", path.format(**ids), {}, AUTH["Authorization"],
                           b'{"queryContext": "customer"}' if method == "POST" else b"")

    bad_key = fake.handle("GET", "/v1/tags", {}, "Bearer nope")
    for request in refused:
        # Kustomer's 401 "missing role, invalid auth token, or billing feature": the body cannot tell which...
        assert status(request) == bad_key == (401, {"errors": [{"status": 401, "code": "unauthorized",
                                                                "title": "Unauthorized",
                                                                "detail": "Invalid or expired auth token"}]}), request
    # ...only the token endpoint can: it answers any valid key, whatever its roles.
    assert fake.handle("GET", "/v1/auth/tokens/current", {}, AUTH["Authorization"])[0] == 200
    assert [status(request)[0] for request in still_served] == [200] * len(still_served)
    fake.faults = Faults(forbidden={name}, refusal_status=403)  # the other reading: a 403 naming the role
    for request in refused:
        assert status(request) == (403, {"errors": [{"status": 403, "code": "forbidden", "title": "Forbidden",
                                                     "detail": f"Missing role org.permission.{role}"}]}), request
    assert [status(request)[0] for request in still_served] == [200] * len(still_served)
    assert fake.handle("GET", "/v1/notes", {}, None)[0] == 401  # authentication comes first
    fake.faults = Faults()
    assert status(refused[0])[0] == 200


def test_missing_lists_are_404_notfound_and_bad_param_lists_400_badparam():
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(missing={"audit-logs"}, bad_param="tags"))
    # The same 404 as an unknown id: an org whose plan has no audit log looks like one without the endpoint.
    assert fake.handle("GET", "/v1/audit-logs", {"count": "5"}, AUTH["Authorization"]) == (404, {
        "errors": [{"status": 404, "code": "notfound", "title": "Not Found"}]}) == get(fake, "/v1/users/" + "0" * 24)
    assert fake.handle("GET", "/v1/tags", {"pageSize": "3", "page": "2"}, AUTH["Authorization"]) == (400, {
        "errors": [{"status": 400, "source": {"parameter": "pageSize"}, "code": "badparam", "title": "Bad Request",
                    "detail": "Invalid value for pageSize"}]})
    assert get(fake, "/v1/tags")[1]["errors"][0]["source"] == {"parameter": "page"}  # no parameters: page
    assert get(fake, "/v1/tags/" + fake.dataset.resources["tags"][0]["id"])[0] == 400  # the list's records too
    assert get(fake, "/v1/users")[0] == 200 and fake.handle("GET", "/v1/audit-logs", {}, None)[0] == 401
    fake.faults = Faults(forbidden={"tags"}, missing={"tags"}, bad_param={"tags"})
    assert get(fake, "/v1/tags")[0] == 401  # forbidden first, then missing, then bad_param


def test_off_host_next_links_point_at_another_host(faulty, http):
    fake = faulty(Dataset(), off_host_next={"customers", "search"})
    page = http.get(fake.url + "/v1/customers?pageSize=100").json()
    assert page["links"]["next"] == "http://evil.example.invalid:9/v1/customers?page=2&pageSize=100"
    assert page["links"]["self"] == "/v1/customers?page=1&pageSize=100"  # only next moves
    assert http.get(fake.url + "/v1/customers?page=3&pageSize=100").json()["links"]["next"] is None
    assert http.get(fake.url + "/v1/tags").json()["links"]["next"] == "/v1/tags?page=2&pageSize=100"
    found = http.post(fake.url + "/v1/customers/search?pageSize=2", json={"queryContext": "customer"}).json()
    assert found["links"]["next"] == "http://evil.example.invalid:9/v1/customers/search?page=2&pageSize=2"
    fake.faults.off_host_next = frozenset()
    assert http.get(fake.url + "/v1/customers").json()["links"]["next"] == "/v1/customers?page=2&pageSize=100"


def test_redirect_sends_the_list_to_another_host(faulty, http):
    fake = faulty(redirect={"conversations", "kobjects"})
    moved = http.get(fake.url + "/v1/conversations?page=2&pageSize=3", allow_redirects=False)
    assert moved.status_code == 302 and moved.content == b""
    assert moved.headers["Location"] == "http://evil.example.invalid:9/v1/conversations?page=2&pageSize=3"
    assert all(name in moved.headers for name in RATE_HEADERS) and moved.headers["X-Ratelimit-Remaining"] == "999"
    kobjects = http.get(fake.url + "/v1/klasses/order", allow_redirects=False)
    assert kobjects.status_code == 302
    assert kobjects.headers["Location"] == "http://evil.example.invalid:9/v1/klasses/order"
    assert http.get(fake.url + "/v1/messages", allow_redirects=False).status_code == 200
    assert requests.get(fake.url + "/v1/conversations", allow_redirects=False).status_code == 401  # no key: no hint


def test_latency_and_slow_requests_that_trip_client_read_timeouts(faulty, http):
    fake = faulty(latency=0.15)
    started = time.monotonic()
    assert http.get(fake.url + "/v1/brands").status_code == 200 and time.monotonic() - started >= 0.15
    fake.faults = Faults(slow_rate=1.0, slow_seconds=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(fake.url + "/v1/brands", timeout=(2, 0.1))
    fake.faults.slow_rate = 0
    started = time.monotonic()
    assert http.get(fake.url + "/v1/brands", timeout=(2, 2)).status_code == 200 and time.monotonic() - started < 0.4
    assert fake.stats.slow == 1
