"""Schemathesis against the citizen API's OpenAPI spec, served over HTTP with the real Kafka and ClickHouse.

Every operation gets generated requests (valid and invalid); every answer must be no 5xx, have a status
the spec documents for it, the documented content type and headers, and a body that fits the documented
schema. The API key is sent, so submissions reach Kafka for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from dashboards.api import create_app
from ioc import kafka_access
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from tests.api.conftest import API_KEY, api_settings
from tests.api.server import serve
from tests.gateways.memory import MemorySink

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_url(seeded_api_db: Any, kafka: dict[str, Any]) -> Iterator[str]:
    settings_ = api_settings(seeded_api_db[0], kafka=KafkaEndpoint.from_service(kafka, kafka_access.API), cache_ttl_s=2)
    with serve(create_app(settings_)) as url:
        yield url


# The spec depends on the site and its settings only, so it is read from an app built the same way as the
# served one (schemathesis' lazy fixture loader does not work with this pytest).
SPEC_APP = create_app(api_settings(ClickHouseEndpoint(port=1)), sink=MemorySink())
schema = schemathesis.openapi.from_dict(SPEC_APP.openapi())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented(case: Any, api_url: str) -> None:
    case.call_and_validate(base_url=api_url, headers={"X-API-Key": API_KEY}, checks=CHECKS)
