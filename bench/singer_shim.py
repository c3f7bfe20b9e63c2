"""Runs the Singer `tap-kustomer` (1.1.0, from PyPI) against a local server, unthrottled, for a fair comparison.

    KUSTOMER_BASE_URL=http://127.0.0.1:PORT bench/.venv-singer/bin/python bench/singer_shim.py -c config.json \
        [--discover | --catalog catalog.json]

Two patches, nothing else changed:
- `singer.utils.ratelimit` becomes a no-op decorator before `tap_kustomer.client` is imported (its
  `@utils.ratelimit(250, 60)` is applied at import time), so the tap is measured on CPU, not on its self-throttle;
- `KustomerClient.base_url`, hard-coded to https://api.kustomerapp.com/v1 in __init__, is replaced after
  construction by $KUSTOMER_BASE_URL + /v1.
"""

import os
import sys

import singer.utils


def _no_ratelimit(limit, every):
    return lambda function: function


singer.utils.ratelimit = _no_ratelimit

import tap_kustomer  # noqa: E402  (after the patch: importing it imports tap_kustomer.client)
from tap_kustomer import client as tap_client  # noqa: E402

BASE_URL = os.environ["KUSTOMER_BASE_URL"].rstrip("/") + "/v1"
_original_init = tap_client.KustomerClient.__init__


def _init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.base_url = BASE_URL


tap_client.KustomerClient.__init__ = _init

if __name__ == "__main__":
    sys.argv[0] = "tap-kustomer"
    tap_kustomer.main()
