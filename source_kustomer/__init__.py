import importlib

# At `import airbyte_cdk`, serpyco-rs reads every protocol class's attribute docstrings, for JSON-schema descriptions
# the CDK never asks for; on Python 3.11, `inspect` parses the whole protocol module again for each class: 0.4 s of
# every command. The serializers are the same without them (unit_tests/test_run.py compares).
for _name in ("serpyco_rs._describe", "serpyco_rs._json_schema._convert"):
    try:
        _module = importlib.import_module(_name)
    except ImportError:  # another serpyco-rs: it keeps its docstrings
        continue
    if hasattr(_module, "get_attributes_doc"):
        _module.get_attributes_doc = lambda cls: {}

from source_kustomer.source import SourceKustomer  # noqa: E402  (the CDK, imported after the above)

__all__ = ["SourceKustomer"]
