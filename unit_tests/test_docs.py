"""The documentation keeps in step with what `discover` offers: every stream in docs/kustomer.md's stream table and in
its roles table, and in the README; and no documented stream that does not exist."""

import re
from pathlib import Path

from source_kustomer import SourceKustomer
from unit_tests.conftest import CONFIG

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "kustomer.md").read_text()
README = (ROOT / "README.md").read_text()
PER_KLASS = "kobjects_<klass>"  # one stream per klass, named at discover


def streams() -> set[str]:
    manifest = SourceKustomer(None, dict(CONFIG), None).resolved_manifest
    return {s["name"] for s in manifest["streams"]} | {PER_KLASS}


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^#{2,3} ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + (following.start() if following else len(text))]


def first_column_names(table: str) -> set[str]:
    names = set()
    for line in table.splitlines():
        if line.lstrip().startswith("|") and not set(line.replace("|", "").strip()) <= set(":- "):
            first = line.strip().strip("|").split("|")[0]
            names |= set(re.findall(r"`([a-z_<>]+)`", first))
    return names


def test_every_discovered_stream_is_in_the_docs_stream_table_and_no_other():
    documented = first_column_names(section(DOCS, "## Supported streams"))
    assert documented == streams(), (sorted(streams() - documented), sorted(documented - streams()))


def test_every_stream_names_its_role():
    roles = first_column_names(section(DOCS, "### Step 1: Set up Kustomer"))
    missing = streams() - roles - {"kobjects"}  # kobjects and kobjects_<klass> share a row
    assert not missing, sorted(missing)


def test_the_readme_names_every_stream():
    missing = {name for name in streams() if f"`{name}`" not in README}
    assert not missing, sorted(missing)
