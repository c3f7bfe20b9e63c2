"""Airbyte's standard connector tests (the in-process successor of the acceptance tests), driven by
acceptance-test-config.yml against the fake Kustomer API. Docker-image tests are deselected in pyproject.toml."""

from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase

from source_kustomer import SourceKustomer


class TestKustomerStandardSuite(SourceTestSuiteBase):
    connector_name = "source-kustomer"  # not the checkout's folder name

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> SourceKustomer:
        # The CDK's runtime takes the config in the constructor, so each scenario gets its own source.
        config = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True) if scenario else None
        return SourceKustomer(None, config or None, None)
