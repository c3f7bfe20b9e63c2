"""Console entry point `source-kustomer`: spec, check, discover and read, as Airbyte runs them."""

from __future__ import annotations

import sys
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import AirbyteMessage, AirbyteMessageSerializer, FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.source import SourceKustomer


def _print(message: AirbyteMessage) -> None:
    print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode(), flush=True)


def _create_source(args: List[str]) -> SourceKustomer:
    # The CDK's runtime reads config, catalog and state from the constructor, not from the command.
    config_path = AirbyteEntrypoint.extract_config(args)
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    try:
        config = SourceKustomer.read_config(config_path) if config_path else None
        catalog = SourceKustomer.read_catalog(catalog_path) if catalog_path else None
        state = SourceKustomer.read_state(state_path) if state_path else None
    except Exception as error:  # unreadable file: say which, without a traceback
        raise AirbyteTracedException(
            message=f"Could not read the files given on the command line: {error}",
            failure_type=FailureType.config_error,
        ) from None
    return SourceKustomer(catalog, config, state)


def run(args: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if args is None else args
    try:
        source = _create_source(args)
    except AirbyteTracedException as error:
        # A config error found before any command ran: `check` reports it as a failed check, others as an error.
        status = error.as_connection_status_message() if args[:1] == ["check"] else None
        message = status or error.as_sanitized_airbyte_message()
        if message.trace:
            message.trace.error.stack_trace = None  # a config error is the user's to fix; no traceback
        _print(message)
        sys.exit(0 if status else 1)
    launch(source, args)


if __name__ == "__main__":
    run()
