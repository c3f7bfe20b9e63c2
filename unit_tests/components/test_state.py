"""components/state.py: the state a sync is given becomes the CDK's cursors and this sync's plan, every earlier shape
read (and an unknown one read as "from the beginning of that read")."""

from datetime import datetime, timedelta, timezone

from airbyte_cdk.models import AirbyteStateMessageSerializer

from source_kustomer.components.state import ListPosition, SyncPlan, singer_bookmarks
from source_kustomer.components.timestamps import kustomer_timestamp

FORMATS = ["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"]
REACH = timedelta(days=700)
RECENT = kustomer_timestamp(datetime.now(timezone.utc) - timedelta(days=3))
OLD = "2020-01-01T00:00:00.000Z"


def message(stream, blob):
    return AirbyteStateMessageSerializer.load({"type": "STREAM", "stream": {"stream_descriptor": {"name": stream}, "stream_state": blob}})


def plan(*messages, delegated=("customers", "kobjects", "conversation_times")):
    return SyncPlan.from_state(list(messages), ["tags"], FORMATS, lambda name: name in delegated, REACH)


def given(blobs, name):
    return [m.stream.stream_state.__dict__ for m in blobs if m.stream.stream_descriptor.name == name]


def test_a_list_position_goes_to_the_plan_and_the_cursor_to_the_cdk():
    position = {"v": 1, "page": 12, "from": 10, "since": RECENT, "end": RECENT}
    made, cdk, unusable = plan(message("customers", {"updatedAt": RECENT, "list": position}))
    assert given(cdk, "customers") == [{"updatedAt": RECENT}] and not unusable
    checkpoint = made.stream("customers").list
    assert checkpoint.position == ListPosition(12, 10, checkpoint.position.since) and checkpoint.end == RECENT
    assert made.full_refresh("tags") and not made.full_refresh("customers")
    assert SyncPlan.of({"sync_plan": made.to_config()}) == made  # what the components read is what was made


def test_a_position_of_another_version_lists_from_the_first_page():
    made, _, _ = plan(message("customers", {"updatedAt": RECENT, "list": {"v": 9, "page": 12}}))
    assert made.stream("customers").list.position is None


def test_klass_positions_and_klass_ranges():
    klasses = {"v": 1, "end": RECENT, "klasses": {"order": {"page": 3, "from": 1, "since": RECENT}}, "done": ["sub"]}
    ranges = {"v": 1, "klasses": {"order": [[OLD, RECENT]]}}
    made, cdk, _ = plan(message("kobjects", {"use_global_cursor": True, "state": {"updatedAt": RECENT}, "list": klasses}),
                        message("kobjects_order", {"updatedAt": RECENT, "search": ranges}))
    assert made.stream("kobjects").list.klasses["order"].page == 3 and made.stream("kobjects").list.done == ["sub"]
    assert made.stream("kobjects_order").searched_klasses == {"order": [[OLD, RECENT]]}
    assert given(cdk, "kobjects_order") == [{"updatedAt": RECENT}]


def test_a_state_older_than_search_reaches_is_listed_from_its_time_not_given_to_the_cdk():
    made, cdk, _ = plan(message("customers", {"updatedAt": OLD}), message("tags", {"updatedAt": OLD}))
    assert made.stream("customers").list_from == OLD and not given(cdk, "customers")
    assert given(cdk, "tags") == [{"updatedAt": OLD}]  # a list stream: its own filter


def test_the_conversation_times_state_of_earlier_releases_becomes_the_creation_cursor():
    earlier = {"use_global_cursor": True, "lookback_window": 1, "state": {"conversationUpdatedAt": RECENT},
               "parent_state": {"conversations": {"updatedAt": RECENT}}}
    made, cdk, _ = plan(message("conversation_times", earlier))
    assert given(cdk, "conversation_times") == [{"createdAt": RECENT}]
    assert made.stream("conversation_times").by_conversation_first
    interrupted = {**earlier, "parent_state": {"conversations": {"updatedAt": OLD, "list": {"v": 1, "page": 4, "from": 4, "since": RECENT, "end": RECENT}}}}
    made, cdk, _ = plan(message("conversation_times", interrupted))
    assert made.stream("conversation_times").list.position.page == 4  # its first sync's list goes on
    assert made.stream("conversation_times").list_from == OLD and not made.stream("conversation_times").by_conversation_first


def test_a_cursor_that_is_no_time_is_unusable_and_says_what_to_do():
    _, cdk, unusable = plan(message("customers", {"updatedAt": "soon"}))
    assert not given(cdk, "customers") and "Reset (clear the data of) the stream customers" in unusable["customers"][0]


def test_singer_bookmarks_as_they_are_or_in_a_legacy_message():
    assert singer_bookmarks({"bookmarks": {"customers": OLD, "unknown": OLD}}) == {"customers": OLD}
    assert singer_bookmarks([{"type": "LEGACY", "data": {"bookmarks": {"users": OLD}}}]) == {"users": OLD}
    assert singer_bookmarks([{"type": "STREAM"}]) is None
