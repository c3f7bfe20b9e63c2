"""Airbyte's standard connector tests (the in-process successor of the acceptance tests), driven by
acceptance-test-config.yml against the fake Kustomer API. Docker-image tests are deselected in pyproject.toml."""

from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase

from integration_tests.conftest import ACCEPTANCE_PORT
from source_kustomer import SourceKustomer


class TestKustomerStandardSuite(SourceTestSuiteBase):
    connector_name = "source-kustomer"  # not the checkout's folder name

    @classmethod
    def get_scenarios(cls) -> list[ConnectorTestScenario]:
        # The config files name the default port of conftest's fake API; this run's (KUSTOMER_FAKE_PORT) replaces it.
        scenarios = []
        for scenario in super().get_scenarios():
            config = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True)
            if "base_url" in config:
                config = {**config, "base_url": f"http://127.0.0.1:{ACCEPTANCE_PORT}"}
                scenario = scenario.model_copy(update={"config_dict": config})
            scenarios.append(scenario)
        return scenarios

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> SourceKustomer:
        # The CDK's runtime takes the config in the constructor, so each scenario gets its own source.
        config = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True) if scenario else None
        return SourceKustomer(None, config or None, None)
