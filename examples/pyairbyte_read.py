"""Read Kustomer with PyAirbyte into its local DuckDB cache; print rows per stream and the first customers.

PyAirbyte and the connector live in separate virtualenvs: PyAirbyte from integration_tests/pyairbyte_requirements.txt
(Python 3.10-3.12; `pytest -m pyairbyte` makes ~/.cache/source-kustomer/pyairbyte-venv/), the connector from
`make install` (.venv/).

    KUSTOMER_ORG=acme KUSTOMER_API_KEY=... ~/.cache/source-kustomer/pyairbyte-venv/bin/python examples/pyairbyte_read.py
    ~/.cache/source-kustomer/pyairbyte-venv/bin/python examples/pyairbyte_read.py --demo     # a fake org on 127.0.0.1

SOURCE_KUSTOMER names the connector command (default: .venv/bin/source-kustomer, else source-kustomer on PATH).
The cache is ./.cache (AIRBYTE_CACHE_ROOT moves it): later runs read only what changed. --demo uses a temporary one.
"""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO, DEMO = Path(__file__).resolve().parents[1], "--demo" in sys.argv[1:]
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # a local connector: no download of Airbyte's connector registry
if DEMO:
    os.environ["AIRBYTE_CACHE_ROOT"] = tempfile.mkdtemp(prefix="pyairbyte-demo-")
    atexit.register(shutil.rmtree, os.environ["AIRBYTE_CACHE_ROOT"], True)
import airbyte as ab  # noqa: E402  (after the environment: PyAirbyte reads it on import)

EXECUTABLE = os.environ.get("SOURCE_KUSTOMER") or (
    str(REPO / ".venv/bin/source-kustomer") if (REPO / ".venv/bin/source-kustomer").exists()
    else shutil.which("source-kustomer"))


def read(config: dict) -> None:
    source = ab.get_source("source-kustomer", config=config, local_executable=EXECUTABLE, streams="*")
    result = source.read()  # into ab.get_default_cache(); incremental from the state kept there
    print("\n".join(f"{name:<15}{len(dataset):>9} rows" for name, dataset in sorted(result.streams.items())))
    print(result["customers"].to_pandas()[["id", "name", "updatedat", "companyid"]].head().to_string(index=False))


if DEMO:
    sys.path.insert(0, str(REPO))
    from integration_tests.fake_kustomer import API_KEY, FakeKustomer

    with FakeKustomer() as fake:
        read({"organization": "acme", "api_key": API_KEY, "base_url": fake.url})
else:
    read({"organization": os.environ["KUSTOMER_ORG"], "api_key": os.environ["KUSTOMER_API_KEY"]})
