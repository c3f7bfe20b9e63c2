"""Console entry point `source-kustomer`: spec, check, discover and read, as Airbyte runs them."""

from __future__ import annotations

import gc
import hashlib
import inspect
import sys
import time
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, List, Optional

import orjson
import requests
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import (
    AirbyteLogMessage, AirbyteMessage, AirbyteMessageSerializer, AirbyteRecordMessage, FailureType, Level, Type,
)
from airbyte_cdk.sources.concurrent_source.concurrent_read_processor import ConcurrentReadProcessor
from airbyte_cdk.sources.concurrent_source.concurrent_source import ConcurrentSource
from airbyte_cdk.sources.connector_state_manager import HashableStreamDescriptor
from airbyte_cdk.sources.types import Record
from airbyte_cdk.sources.utils.record_helper import stream_data_to_airbyte_message
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
        concurrent = getattr(source, "_concurrent_source", None)
        if type(concurrent) is ConcurrentSource:  # the CDK builds it itself: adopted as the subclass, state and all
            concurrent.__class__ = DirectRecords
            concurrent.writer = writer
            monitor = getattr(self, "_memory_monitor", None)
            if monitor:
                concurrent.check_memory = monitor.check_memory_usage

    def read(self, source_spec: Any, config: Any, catalog: Any, state: list[Any]) -> Iterator[AirbyteMessage]:
        self.writer.secrets = [str(secret).encode() for secret in get_secrets(source_spec.connectionSpecification, config) if secret]
        for message in super().read(source_spec, config, catalog, state):
            if not self.writer.write(message):
                yield message

    def handle_record_counts(self, message: AirbyteMessage, stream_message_count: Any) -> AirbyteMessage:
        if message.type == Type.STATE and message.state.stream and self.writer.counts:
            # The records DirectRecords wrote since this stream's last state count in this state's sourceStats.
            descriptor = message.state.stream.stream_descriptor
            if descriptor.namespace is None:
                stream_message_count[self._descriptor(descriptor.name, None)] += self.writer.counts.pop(descriptor.name, 0)
        if message.type != Type.RECORD:
            return AirbyteEntrypoint.handle_record_counts(message, stream_message_count)
        # The CDK builds a descriptor for every record it counts; one per stream will do.
        stream_message_count[self._descriptor(message.record.stream, message.record.namespace)] += 1.0
        return message

    @classmethod
    def _descriptor(cls, name: str, namespace: Optional[str]) -> HashableStreamDescriptor:
        descriptor = cls._descriptors.get((name, namespace))
        if descriptor is None:
            descriptor = cls._descriptors[(name, namespace)] = HashableStreamDescriptor(name=name, namespace=namespace)
        return descriptor


def cdk_read_loop() -> str:
    """A digest of the CDK code whose per-record work DirectRecords does in its place."""
    code = (ConcurrentSource._consume_from_queue, ConcurrentSource._handle_item, ConcurrentReadProcessor.on_record,
            stream_data_to_airbyte_message, AirbyteEntrypoint.read, AirbyteEntrypoint.handle_record_counts)
    try:
        return hashlib.sha256("".join(inspect.getsource(function) for function in code).encode()).hexdigest()[:16]
    except (OSError, TypeError):  # installed without its sources: unknown, so the CDK's own path
        return ""


class DirectRecords(ConcurrentSource):
    """The CDK's concurrent read with one change on its main thread: after a stream's first record (which the CDK
    announces with a RUNNING status), the stream's records go from the queue straight to the writer, without an
    AirbyteMessage each and five generator layers (a tenth of a sync's CPU). The writer counts them for the next
    state's sourceStats, the CDK's own count, which it logs, still counts them, and its memory check sees each.

    Everything else takes the CDK's path, and so does every record if the CDK's read loop is not the one this was
    written against (`cdk_read_loop`; a CDK upgrade then makes a sync slower, never wrong)."""

    CDK_READ_LOOP = "bf5dfc5c3065a5c1"  # cdk_read_loop() of airbyte-cdk 7.39.1
    writer: Optional[RecordWriter] = None
    check_memory: Callable[[], None] = staticmethod(lambda: None)

    def _consume_from_queue(self, queue: Any, processor: ConcurrentReadProcessor) -> Iterable[AirbyteMessage]:
        counts = getattr(processor, "_record_counter", None)
        if self.writer is None or not isinstance(counts, dict) or cdk_read_loop() != self.CDK_READ_LOOP:
            yield from super()._consume_from_queue(queue, processor)
            return
        write, buffered = self.writer.write_record, self._message_repository.consume_queue
        while item := queue.get():
            if type(item) is Record and counts.get(item.stream_name) and item.file_reference is None:
                counts[item.stream_name] += 1
                write(item.stream_name, item.data)
                try:  # the CDK checks memory after each message, to fail a sync before the machine kills it
                    self.check_memory()
                finally:  # as on_record, and before a failed check's error: what could not go on a full queue
                    yield from buffered()
            else:
                yield from self._handle_item(item, processor)
            if queue.empty() and processor.is_done():
                break


class RecordWriter:
    """Writes RECORD messages as bytes, a megabyte at a time; `flush` before any other line is printed. The CDK
    turns each record into a string and back (serpyco, orjson, decode, the secret filter, its print buffer,
    encode): a tenth of a sync's CPU. The secret filter still applies, to each megabyte."""

    SIZE, EVERY = 1 << 20, 0.1  # bytes, and seconds a record may wait to be written

    def __init__(self) -> None:
        self.secrets: list[bytes] = []
        self.counts: Counter[str] = Counter()  # records of `write_record` per stream, until its next state
        self._pending = bytearray()
        self._since = time.monotonic()

    def write(self, message: AirbyteMessage) -> bool:
        """Takes a record (True), or leaves the message to the CDK (False)."""
        record = message.record
        if message.type != Type.RECORD or record.namespace or record.meta or record.file_reference:
            return False
        self._append(record.stream, record.data, record.emitted_at)
        return True

    def write_record(self, stream: str, data: dict) -> None:
        """A record that never became an AirbyteMessage (DirectRecords), stamped as the CDK stamps one."""
        self.counts[stream] += 1
        self._append(stream, data, time.time_ns() // 1_000_000)

    def _append(self, stream: str, data: dict, emitted_at: int) -> None:
        if None in data.values():  # the CDK leaves out a record's top-level nulls
            data = {key: value for key, value in data.items() if value is not None}
        message = {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": emitted_at}}
        try:  # the CDK's own JSON of a record, key for key
            self._pending += orjson.dumps(message)
        except TypeError:  # what orjson cannot write; the CDK falls back to json
            record = AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(stream=stream, data=data, emitted_at=emitted_at))
            self._pending += AirbyteEntrypoint.airbyte_message_to_string(record).encode()
        self._pending += b"\n"
        if len(self._pending) >= self.SIZE or time.monotonic() - self._since >= self.EVERY:
            self.flush()

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
