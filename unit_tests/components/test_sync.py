"""components/sync.py: what the components of one sync share, and only they."""

import threading

from source_kustomer.components.sync import Sync


def test_one_sync_one_object_a_new_sync_a_new_one():
    config = {"sync_id": "a", "api_url": "https://acme.api.kustomerapp.com", "max_api_usage_percent": 50}
    assert Sync.of(config) is Sync.of(dict(config))  # every component of the sync, whatever its copy of the config
    assert Sync.of({**config, "sync_id": "b"}) is not Sync.of(config)


def test_a_warning_is_given_once_per_sync(caplog):
    sync = Sync.of({"sync_id": "warn-once", "max_api_usage_percent": 50})
    assert sync.warn_once("k", "careful") and not sync.warn_once("k", "careful")
    assert caplog.text.count("careful") == 1


def test_whether_the_key_is_refused_is_asked_once_whatever_the_threads():
    sync, asked = Sync.of({"sync_id": "key-check", "max_api_usage_percent": 50}), []
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(sync.key_refused(lambda: asked.append(1) or False)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert asked == [1] and answers == [False] * 8
