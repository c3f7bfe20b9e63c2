"""CAT's `test_state_with_abnormally_large_values` (protocol rules §3.5) for every incremental stream: a read from a
far-future state yields no records, a STATE per stream, and cursors in the format of the state it was given.

Three command runs in all: one discover, one first read (for the shape of each stream's state), one future read."""

import re

import pytest

from integration_tests import cli
from integration_tests.fake_kustomer import API_KEY

# An ISO 8601 timestamp as the connector writes it in its states: date, optional time and fraction, optional zone.
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:([T ])(\d{2}:\d{2}:\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def far_future(value: str) -> str | None:
    """`2999-01-01T00:00:00.000000Z` in the format of `value` (same fraction digits, separator and zone), else None."""
    match = TIMESTAMP.fullmatch(value)
    if not match:
        return None
    date, separator, time, fraction, zone = match.groups()
    time_part = f"{separator}00:00:00{'.' + '0' * (len(fraction) - 1) if fraction else ''}" if separator else ""
    return f"2999-01-01{time_part}{zone or ''}"


def to_far_future(state):
    """The state with every timestamp string replaced by its far-future twin."""
    if isinstance(state, dict):
        return {key: to_far_future(value) for key, value in state.items()}
    if isinstance(state, list):
        return [to_far_future(value) for value in state]
    if isinstance(state, str):
        return far_future(state) or state
    return state


def values_of(state, key: str) -> list:
    """Every value under `key` anywhere in the state: how CAT finds a stream's cursor in it."""
    if isinstance(state, dict):
        return [v for k, value in state.items() for v in ([value] if k == key else []) + values_of(value, key)]
    if isinstance(state, list):
        return [v for value in state for v in values_of(value, key)]
    return []


def same_shape(actual: str, expected: str) -> bool:
    """CAT's `_check_cursor_by_char_types`: same length, letters for letters, digits for digits, equal punctuation."""
    return len(actual) == len(expected) and all(
        (a.isalpha() and e.isalpha()) or (a.isdigit() and e.isdigit()) or (not a.isalnum() and a == e)
        for a, e in zip(actual, expected)
    )


@pytest.fixture(scope="module")
def future(fake):
    config = {"organization": "acme", "api_key": API_KEY, "base_url": fake.url}
    discovered = cli.run("discover", config).of_type("CATALOG")[0]
    incremental = [s for s in discovered["streams"] if "incremental" in s["supported_sync_modes"]]
    catalog = cli.configured_catalog(discovered, [s["name"] for s in incremental], incremental=True)
    # This read only supplies the shape of each stream's state. Its output is checked by the other tests' reads of
    # the same streams (test_connector.py's full read); checking it here would fail this test for unrelated reasons.
    first = cli.run("read", config, catalog, check_conformance=False)
    assert first.returncode == 0 and not first.errors(), first.errors()
    states = [{**state, "stream": {**state["stream"], "stream_state": to_far_future(state["stream"]["stream_state"])}}
              for state in first.final_states()]
    run = cli.run("read", config, catalog, state=states)  # checked by conformance.py through cli.run
    given = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in states}
    cursors = {s["name"]: s["default_cursor_field"][-1] for s in incremental}
    return run, given, cursors


def test_every_incremental_stream_has_a_state_with_a_timestamp_to_push_into_the_future(future):
    _, given, cursors = future
    assert set(given) == set(cursors), "every incremental stream ends its first read with a state"
    unchanged = [name for name, state in given.items() if "2999-01-01" not in str(state)]
    assert not unchanged, f"no timestamp found in the state of {unchanged}"


def test_a_far_future_state_reads_no_records(future):
    run, _, _ = future
    assert run.returncode == 0 and not run.errors(), run.errors()
    assert {stream: len(records) for stream, records in run.records_by_stream().items()} == {}


def test_a_far_future_state_still_emits_a_state_per_stream(future):
    run, _, cursors = future
    emitted = {s["stream"]["stream_descriptor"]["name"] for s in run.of_type("STATE")}
    assert set(cursors) - emitted == set()


def test_the_emitted_cursors_keep_the_format_of_the_given_state(future):
    run, given, cursors = future
    problems = []
    for state in run.of_type("STATE"):
        name = state["stream"]["stream_descriptor"]["name"]
        expected = values_of(given[name], cursors[name])
        actual = values_of(state["stream"]["stream_state"], cursors[name])
        if not actual:
            problems.append(f"{name}: no {cursors[name]} in {state['stream']['stream_state']}")
        for value in actual:
            if not isinstance(value, str) or not expected or not same_shape(value, expected[0]):
                problems.append(f"{name}: cursor {cursors[name]} = {value!r}, given {expected[:1]}")
    assert not problems, "\n".join(problems)
