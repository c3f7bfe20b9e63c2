"""X-Ratelimit-Remaining's readings, and the new Faults options' checks and command-line flags."""

import pytest

from integration_tests.fake_kustomer import Dataset, FakeKustomer, Faults, main
from integration_tests.fake_kustomer.tests.common import MINUTE, SMALL, call


def remaining(fake, requests) -> list[tuple[int, str]]:
    """(status, X-Ratelimit-Remaining) per request; "401" asks without a key."""
    answers = [call(fake, "GET", "/v1/tags", authorization=None) if r == "401" else call(fake, "GET", "/v1/tags")
               for r in requests]
    return [(a.status, a.headers["X-Ratelimit-Remaining"]) for a in answers]


def served(**faults) -> FakeKustomer:
    fake = FakeKustomer(Dataset(SMALL), faults=Faults(**faults))
    fake.wall = lambda: MINUTE + 30  # all in one window
    return fake


def test_counted_is_the_default_and_falls_with_every_counted_request():
    assert remaining(served(rate_limit=3), "ok ok 401 ok ok".split()) == \
        [(200, "2"), (200, "1"), (401, "1"), (200, "0"), (429, "0")]


def test_constant_never_falls_and_the_429s_still_come_on_the_real_count():
    fake = served(rate_limit=3, remaining="constant")
    assert remaining(fake, "ok ok ok ok 401".split()) == [(200, "2"), (200, "2"), (200, "2"), (429, "2"), (401, "2")]
    assert fake.stats.windows[-1].served == 3 and fake.stats.rate_limited == 1
    assert remaining(served(remaining="constant"), ["ok"] * 3) == [(200, "999")] * 3  # no limit enforced: 1,000 - 1
    searches = served(rate_limit=10, search_rate_limit=1, remaining="constant")
    over = [call(searches, "POST", "/v1/customers/search", {"queryContext": "customer"}) for _ in range(2)][-1]
    assert (over.status, over.headers["X-Ratelimit-Limit"], over.headers["X-Ratelimit-Remaining"]) == (429, "1", "0")


def test_alternating_pods_each_count_their_own_and_the_429s_come_on_the_org_s_count():
    fake = served(rate_limit=6, remaining="alternating")
    # Alone: half the real fall, in pairs; the seventh request is over the org's 6 however much a pod shows left.
    assert remaining(fake, ["ok"] * 8) == [(200, "5"), (200, "5"), (200, "4"), (200, "4"), (200, "3"), (200, "3"),
                                           (429, "3"), (429, "3")]
    assert fake.stats.windows[-1].served == 6 and fake.stats.windows[-1].pods == [3, 3] and fake.stats.turns == 8


def test_alternating_goes_up_and_down_when_the_pods_carry_different_loads():
    # The org's other users went through the first pod: each answer jumps by about their count.
    assert [r for _, r in remaining(served(remaining="alternating", others_per_window=40), ["ok"] * 6)] == \
        ["959", "999", "958", "998", "957", "997"]
    # Every other request unauthorized: the second pod answers all the 401s, the first counts all the rest.
    assert remaining(served(remaining="alternating"), "ok 401 ok 401 ok ok".split()) == \
        [(200, "999"), (401, "1000"), (200, "998"), (401, "1000"), (200, "997"), (200, "999")]


def test_alternating_starts_both_pods_afresh_with_each_window():
    fake = served(remaining="alternating", rate_window=60)
    assert [r for _, r in remaining(fake, ["ok"] * 3)] == ["999", "999", "998"]
    fake.wall = lambda: MINUTE + 60
    assert [r for _, r in remaining(fake, ["ok"] * 3)] == ["999", "999", "998"]  # turn 3 was the second pod's
    assert [w.pods for w in fake.stats.windows] == [[2, 1], [1, 2]]


def test_the_new_settings_are_checked():
    Faults(search_window=10_000, search_window_answer="silent", timed_out_rate=1, index_lag=0.5,
           remaining="alternating", refuse_contexts={"conversation_time", "kobject_anything"},
           refuse_context_status=404)
    assert Faults(refuse_contexts="conversation_time").refuse_contexts == frozenset({"conversation_time"})
    for bad, match in [(dict(search_window=0), "search_window"), (dict(search_window=10.5), "search_window"),
                       (dict(search_window=True), "search_window"), (dict(search_window_answer="200"), "silent"),
                       (dict(search_window_answer=404), "search_window_answer"),
                       (dict(timed_out_rate=1.5), "timed_out_rate"), (dict(index_lag=-1), "index_lag"),
                       (dict(index_lag=float("nan")), "index_lag"), (dict(remaining="falling"), "alternating"),
                       (dict(refuse_contexts={"conversation_times"}), "conversation_times"),
                       (dict(refuse_contexts={"kobject_"}), "kobject_"), (dict(refuse_contexts={"user"}), "user"),
                       (dict(refuse_context_status=500), "refuse_context_status")]:
        with pytest.raises(ValueError, match=match):
            Faults(**bad)


def test_the_command_line_takes_the_new_options(command_line_faults, capsys):
    made = command_line_faults
    main(["--search-window", "10000", "--search-window-answer", "400", "--timed-out-rate", "0.1", "--index-lag", "30",
          "--remaining", "constant", "--refuse-contexts", "conversation_time,note", "--refuse-context-status", "403",
          "--scale", "0.01"])
    [faults] = made
    assert (faults.search_window, faults.search_window_answer, faults.timed_out_rate, faults.index_lag,
            faults.remaining, faults.refuse_contexts, faults.refuse_context_status) == \
        (10000, "400", 0.1, 30.0, "constant", frozenset({"conversation_time", "note"}), 403)
    main(["--scale", "0.01"])
    assert made[-1] == Faults()  # every default as before
    assert "fake Kustomer API at http://127.0.0.1:1" in capsys.readouterr().out
    for argv, says in [(["--remaining", "sometimes"], "invalid choice"), (["--refuse-contexts", "times"], "times"),
                       (["--search-window-answer", "302"], "invalid choice"), (["--timed-out-rate", "2"], "0 to 1")]:
        with pytest.raises(SystemExit):
            main(argv)
        assert says in capsys.readouterr().err
