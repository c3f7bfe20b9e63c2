"""metadata.yaml is valid Airbyte connector metadata and agrees with pyproject.toml and the Dockerfile.

The schema is the one Airbyte publishes in the `airbyte-connector-models` package, vendored unchanged in
airbyte_metadata_schema/ (see its README.md for the version and license).
"""

import json
import pathlib
import sys

import jsonschema
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pyproject's dev extra installs tomli there
    import tomli as tomllib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
METADATA_PATH = REPO_ROOT / "metadata.yaml"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
DOCKERFILE_PATH = REPO_ROOT / "Dockerfile"
SCHEMA_PATH = pathlib.Path(__file__).resolve().parent / "airbyte_metadata_schema" / "ConnectorMetadataDefinitionV0.json"


def _strip_nested_ids(node, is_root=True):
    """Drop `$id` from every sub-schema but the root.

    The bundled schema inlines sub-schemas that keep their own `$id`s, while its `$ref`s
    (`#/properties/data/...`) point from the root document. With the nested `$id`s in place
    jsonschema resolves those refs against the wrong base and fails with PointerToNowhere.
    """
    if isinstance(node, dict):
        return {
            key: _strip_nested_ids(value, is_root=False)
            for key, value in node.items()
            if is_root or key != "$id"
        }
    if isinstance(node, list):
        return [_strip_nested_ids(item, is_root=False) for item in node]
    return node


@pytest.fixture(scope="module")
def validator():
    schema = _strip_nested_ids(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    validator_class = jsonschema.validators.validator_for(schema)
    # No check_schema(): the bundled schema is not itself meta-valid (a `type: ConnectorMetric`
    # under data.generated, a field this connector's metadata does not use).
    # Every format jsonschema knows, not only draft 7's: that includes `uuid` (definitionId).
    return validator_class(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def metadata():
    raw = yaml.safe_load(METADATA_PATH.read_text(encoding="utf-8"))
    # YAML turns unquoted dates into datetime.date; the schema (like Airbyte's tooling) sees
    # the JSON form, where they are strings.
    return json.loads(json.dumps(raw, default=str))


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads(PYPROJECT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile():
    """The Dockerfile's ARG defaults, FROM images and LABELs."""
    args, froms, labels = {}, [], {}
    for line in DOCKERFILE_PATH.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip().strip('"')
        elif instruction == "FROM":
            froms.append(rest.split()[0])
        elif instruction == "LABEL":
            for pair in rest.split():
                name, _, value = pair.partition("=")
                labels[name] = value.strip('"')
    return {"args": args, "froms": froms, "labels": labels}


def _errors(validator, instance):
    return sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))


def test_metadata_matches_airbyte_schema(validator, metadata):
    errors = _errors(validator, metadata)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("field", ["definitionId", "dockerRepository", "dockerImageTag", "name"])
def test_validator_rejects_metadata_without_required_field(validator, metadata, field):
    broken = json.loads(json.dumps(metadata))
    del broken["data"][field]
    messages = [error.message for error in _errors(validator, broken)]
    assert f"'{field}' is a required property" in messages


@pytest.mark.parametrize(
    ("field", "bad_value"),
    [
        ("definitionId", "not-a-uuid"),
        ("releaseStage", "experimental"),
        ("connectorSubtype", "rest"),
        ("unknownField", True),
    ],
)
def test_validator_rejects_bad_values(validator, metadata, field, bad_value):
    broken = json.loads(json.dumps(metadata))
    broken["data"][field] = bad_value
    assert _errors(validator, broken)


def test_metadata_identity(metadata):
    data = metadata["data"]
    assert metadata["metadataSpecVersion"] == "1.0"
    assert data["connectorType"] == "source"
    assert data["connectorSubtype"] == "api"
    assert data["dockerRepository"] == "airbyte/source-kustomer"
    assert data["githubIssueLabel"] == "source-kustomer"
    assert data["remoteRegistries"]["pypi"]["packageName"] == "airbyte-source-kustomer"
    assert set(data["tags"]) >= {"language:python", "cdk:low-code"}
    assert (REPO_ROOT / data["icon"]).is_file()


def test_versions_agree(metadata, pyproject, dockerfile):
    image_tag = metadata["data"]["dockerImageTag"]
    assert image_tag == pyproject["project"]["version"]
    assert image_tag == dockerfile["labels"]["io.airbyte.version"]


def test_base_image_agrees(metadata, dockerfile):
    assert dockerfile["froms"] == ["${BASE_IMAGE}"]
    base_image = dockerfile["args"]["BASE_IMAGE"]
    assert base_image == metadata["data"]["connectorBuildOptions"]["baseImage"]
    # Pinned by tag and digest, as Airbyte pins its connectors' base images.
    assert base_image.startswith("docker.io/airbyte/python-connector-base:")
    assert "@sha256:" in base_image


def test_image_name_agrees(metadata, dockerfile):
    assert dockerfile["labels"]["io.airbyte.name"] == metadata["data"]["dockerRepository"]
