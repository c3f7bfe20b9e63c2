"""Console entry point `source-kustomer`: Airbyte's `launch` of the source, with two things it does not do."""

from __future__ import annotations

import sys
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import AirbyteMessage, AirbyteMessageSerializer, FailureType
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.source import SourceKustomer


def _print(message: AirbyteMessage) -> None:
    print(filter_secrets(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode()), flush=True)


def _without_traceback(message: AirbyteMessage) -> AirbyteMessage:
    message.trace.error.stack_trace = None  # the message says what to fix; a traceback only hides it
    return message


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
    return SourceKustomer(catalog, config, state, config_path)  # a migrated config is saved to config_path


def run(args: Optional[List[str]] = None) -> None:
    """`airbyte_cdk.entrypoint.launch`, plus: (1) every line passes the secret filter (the CDK filters its logs, not
    a stream's error trace, and Kustomer may quote a request's token back in an error); (2) a config error found while
    the source is built is a failed `check`, or one error line without a traceback, as the CDK reports it later on."""
    args = sys.argv[1:] if args is None else args
    try:
        source = _create_source(args)
    except AirbyteTracedException as error:
        status = error.as_connection_status_message() if args[:1] == ["check"] else None
        _print(status or _without_traceback(error.as_sanitized_airbyte_message()))
        sys.exit(0 if status else 1)
    entrypoint = AirbyteEntrypoint(source)
    try:
        with PRINT_BUFFER:
            for line in entrypoint.run(entrypoint.parse_args(args)):
                print(f"{filter_secrets(line)}\n", end="")
    except AirbyteTracedException as error:  # streams failed: each already has its own error message above
        _print(_without_traceback(error.as_sanitized_airbyte_message()))
        sys.exit(1)


if __name__ == "__main__":
    run()
