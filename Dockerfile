# Airbyte source-kustomer: a declarative (low-code) connector installed from source.
# The base image is pinned by tag and digest; keep it equal to metadata.yaml's
# data.connectorBuildOptions.baseImage (unit_tests/test_metadata.py checks this).
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.1.0@sha256:1d1aa21d34e851df4e8a87b391c27724c06e2597608e7161f4d167be853bd7b6
FROM ${BASE_IMAGE}

WORKDIR /airbyte/integration_code

# Only what the package build needs (pyproject.toml names README.md as its readme).
COPY pyproject.toml README.md ./
COPY source_kustomer ./source_kustomer

# Installs the package, its package data (manifest.yaml) and the
# `source-kustomer` console script into the image's Python.
RUN pip install --no-cache-dir .

# Run as the base image's non-root `airbyte` user (created there with uid 1000), as
# Airbyte's python connector images do; numeric so runtimes can verify it is not root.
USER 1000

# The Airbyte platform reads AIRBYTE_ENTRYPOINT to call the connector; keep both in step.
ENV AIRBYTE_ENTRYPOINT="source-kustomer"
ENTRYPOINT ["source-kustomer"]

LABEL io.airbyte.name=airbyte/source-kustomer
LABEL io.airbyte.version=1.3.0
