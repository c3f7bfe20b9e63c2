"""Console entry point `source-kustomer`: spec, check, discover and read, as Airbyte runs them."""

from __future__ import annotations

import gc
import sys
import time
from typing import Any, Iterator, List, Optional

import orjson
import requests
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import AirbyteLogMessage, AirbyteMessage, AirbyteMessageSerializer, FailureType, Level, Type
from airbyte_cdk.sources.connector_state_manager import HashableStreamDescriptor
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, get_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components import PROGRESS
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
    return SourceKustomer(catalog, config, state)


class Entrypoint(AirbyteEntrypoint):
    """Airbyte's entrypoint, but `read` hands its records to a `RecordWriter` instead of `run`'s JSON string each."""

    _descriptors: dict[tuple, HashableStreamDescriptor] = {}

    def __init__(self, source: SourceKustomer, writer: RecordWriter) -> None:
        super().__init__(source)
        self.writer = writer

    def read(self, source_spec: Any, config: Any, catalog: Any, state: list[Any]) -> Iterator[AirbyteMessage]:
        self.writer.secrets = [str(secret).encode() for secret in get_secrets(source_spec.connectionSpecification, config) if secret]
        for message in super().read(source_spec, config, catalog, state):
            if not self.writer.write(message):
                yield message

    @staticmethod
    def handle_record_counts(message: AirbyteMessage, stream_message_count: Any) -> AirbyteMessage:
        # The CDK builds a descriptor for every record it counts; one per stream will do.
        if message.type != Type.RECORD:
            return AirbyteEntrypoint.handle_record_counts(message, stream_message_count)
        key = (message.record.stream, message.record.namespace)
        descriptor = Entrypoint._descriptors.get(key)
        if descriptor is None:
            descriptor = Entrypoint._descriptors[key] = HashableStreamDescriptor(name=key[0], namespace=key[1])
        stream_message_count[descriptor] += 1.0
        return message


class RecordWriter:
    """Writes RECORD messages as bytes, a megabyte at a time; `flush` before any other line is printed. The CDK
    turns each record into a string and back (serpyco, orjson, decode, the secret filter, its print buffer,
    encode): a tenth of a sync's CPU. The secret filter still applies, to each megabyte."""

    SIZE, EVERY = 1 << 20, 0.1  # bytes, and seconds a record may wait to be written

    def __init__(self) -> None:
        self.secrets: list[bytes] = []
        self._pending = bytearray()
        self._since = time.monotonic()

    def write(self, message: AirbyteMessage) -> bool:
        """Takes a record (True), or leaves the message to the CDK (False)."""
        record = message.record
        if message.type != Type.RECORD or record.namespace or record.meta or record.file_reference:
            return False
        data = record.data
        if None in data.values():  # the CDK leaves out a record's top-level nulls
            data = {key: value for key, value in data.items() if value is not None}
        try:  # the CDK's own JSON of a record, key for key
            self._pending += orjson.dumps({"type": "RECORD", "record": {"stream": record.stream, "data": data, "emitted_at": record.emitted_at}})
        except TypeError:  # what orjson cannot write; the CDK falls back to json
            self._pending += AirbyteEntrypoint.airbyte_message_to_string(message).encode()
        self._pending += b"\n"
        if len(self._pending) >= self.SIZE or time.monotonic() - self._since >= self.EVERY:
            self.flush()
        return True

    def flush(self) -> None:
        self._since = time.monotonic()
        if not self._pending:
            return
        data = bytes(self._pending)
        self._pending.clear()
        for secret in self.secrets:
            data = data.replace(secret, b"****")
        with PRINT_BUFFER.lock:  # after the lines printed before
            PRINT_BUFFER.flush()
            out = sys.__stdout__ if sys.stdout is PRINT_BUFFER else sys.stdout
            out.flush()
            view = memoryview(data)
            while view:  # an unbuffered stdout (python -u) may take part of it
                view = view[out.buffer.write(view) :]
            out.buffer.flush()


def run(args: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if args is None else args
    try:
        source = _create_source(args)
    except AirbyteTracedException as error:
        # A config error found before any command ran: `check` reports it as a failed check, others as an error.
        status = error.as_connection_status_message() if args[:1] == ["check"] else None
        _print(status or _without_traceback(error.as_sanitized_airbyte_message()))
        sys.exit(0 if status else 1)
    # A sync allocates several objects per record and keeps thousands of records queued, so the default garbage
    # collector runs often and walks them all, and the CDK's own 100,000 objects, each time: ~15% of a sync's CPU.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # requests reads a body 10 KB at a time: each read gives up the GIL and waits for it again behind the other
    # threads, ten times a page. In one megabyte a page takes one or two reads (about 4% of a sync's time).
    requests.models.CONTENT_CHUNK_SIZE = 1 << 20
    # Airbyte's `launch`, with every line passed through the secret filter: the CDK does not filter stream
    # error traces, and Kustomer may quote a request's token back in an error.
    writer = RecordWriter()
    entrypoint = Entrypoint(source, writer)
    try:
        with PRINT_BUFFER:
            try:
                for line in entrypoint.run(entrypoint.parse_args(args)):
                    writer.flush()
                    print(f"{filter_secrets(line)}\n", end="")
            finally:
                writer.flush()
    except AirbyteTracedException as error:  # streams failed: each already has its own error message above
        _print(_without_traceback(error.as_sanitized_airbyte_message()))
        sys.exit(1)
    finally:
        if args[:1] == ["read"]:
            _print(AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.INFO, message=PROGRESS.summary())))


if __name__ == "__main__":
    run()
