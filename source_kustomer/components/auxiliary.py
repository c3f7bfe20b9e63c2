"""Auxiliary reads (typed custom-attribute columns, the klasses that name the per-klass streams): whatever happens to
them, they never fail a core stream; they leave their feature out with one warning."""

import logging
from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader
from airbyte_cdk.sources.types import StreamSlice

from source_kustomer.components.errors import short

LOGGER = logging.getLogger("airbyte")


@dataclass
class OptionalSchemaLoader(SchemaLoader):
    """The schema `loader` gives, or none if it fails, with one warning: typed columns for custom attributes are a
    convenience, never a reason for a stream to fail (its attributes stay in `custom`). A stock loader raises."""

    loader: SchemaLoader
    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._name = parameters.get("name", "?")

    def get_json_schema(self) -> Mapping[str, Any]:
        try:
            return self.loader.get_json_schema()
        except Exception as error:
            LOGGER.warning(f"Stream {self._name}: custom attributes are not typed, only kept in `custom`: reading "
                           f"their metadata failed ({short(error)}).")
            return {"type": "object", "properties": {}}


@dataclass
class BestEffortRetriever(Retriever):
    """What `records` reads, or as much as it could, with a warning that says what is left out (`why`): a stock
    retriever's failure would fail the sync."""

    records: Retriever
    config: Mapping[str, Any]
    parameters: InitVar[Mapping[str, Any]]
    why: str = "an auxiliary list could not be read"

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        try:
            yield from self.records.read_records(records_schema, stream_slice)
        except Exception as error:
            LOGGER.warning(f"{self.why} ({short(error)}).")
