from source_kustomer.source import SourceKustomer

__all__ = ["SourceKustomer"]
