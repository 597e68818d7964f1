"""A site's Kafka identity, made by the operator: on the real API server and a Kafka that authenticates.

The operator (a process, as in a pod) provisions two district sites; with the credentials it wrote into a
site's `<site>-kafka` Secret and an ordinary confluent-kafka client, the site may write its own command
topic and nothing else; a new operator key rotates the password; deleting the site deletes its principal.
District Bắc Tân Uyên (726) and Tân Uyên (723); no other operator test uses these units.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pydantic
import pytest
from confluent_kafka import KafkaError

from ioc import kafka_access, topics
from ioc.settings import KafkaEndpoint
from tests.operators.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    api_client,
    condition,
    custom_api,
    dump,
    get_site,
    kubectl,
    operator_env,
    ready,
    site,
    wait_for,
)
from tests.security.test_kafka_identity import assert_sasl_refused, fetch_errors, produce

pytestmark = [pytest.mark.slow]

SITE, OTHER = "726", "723"
CA_SECRET = "ioc-kafka-ca"


@pytest.fixture(scope="module")
def secure(kafka: dict[str, Any]) -> dict[str, Any]:
    if "principals" not in kafka:
        pytest.skip("the session's Kafka runs without authentication (IOC_STACK_KAFKA_AUTH=0): no principal to issue")
    return kafka


@pytest.fixture(scope="module")
def operator(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    secure: dict[str, Any],
    mosquitto: dict[str, Any],
    module_namespace: str,
    warehouse_tables: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    # The CA Secret's name only appears in the pods' spec: this API server runs no pods.
    env = operator_env(
        kube,
        clickhouse,
        secure,
        mosquitto,
        namespace=module_namespace,
        IOC_OPERATOR_DASHBOARD_KAFKA_CA_SECRET=CA_SECRET,
    )
    process = OperatorProcess(env, tmp_path_factory.mktemp("operator") / "operator.log").start()
    yield process
    process.stop()


def _core(kube: dict[str, Any]) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client(kube["kubeconfig"]))


def _secret(kube: dict[str, Any], ns: str, name: str) -> dict[str, str]:
    data = _core(kube).read_namespaced_secret(name, ns).data
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _as_site(kafka: dict[str, Any], credentials: dict[str, str]) -> KafkaEndpoint:
    """An ordinary client's endpoint: the stack's brokers and CA, the site's username and password."""
    return KafkaEndpoint.from_service(kafka).model_copy(
        update={"username": credentials["username"], "password": pydantic.SecretStr(credentials["password"])}
    )


@pytest.fixture(scope="module")
def sites(kube: dict[str, Any], module_namespace: str, operator: OperatorProcess) -> dict[str, Any]:
    ns = module_namespace
    for name, unit in (("bac-tan-uyen", SITE), ("tan-uyen", OTHER)):
        kubectl(kube, "apply", "-n", ns, "-f", "-", stdin=json.dumps(site(name, unit, "district")))
    for name in ("bac-tan-uyen", "tan-uyen"):
        wait_for(lambda name=name: ready(kube, ns, name), 90, f"{name} Ready\n{operator.text()[-3000:]}")
    return {"namespace": ns}


def test_the_operator_issues_the_site_a_principal_and_its_dashboard_uses_it(
    kube: dict[str, Any], secure: dict[str, Any], sites: dict[str, Any]
) -> None:
    ns = sites["namespace"]
    obj = get_site(kube, ns, "bac-tan-uyen")
    kafka_condition = condition(obj, "Kafka")
    assert (kafka_condition["status"], kafka_condition["reason"]) == ("True", "PrincipalReady"), dump(obj["status"])
    credentials = _secret(kube, ns, "bac-tan-uyen-kafka")
    assert credentials["username"] == kafka_access.site_principal(SITE) == f"ioc-site-{SITE}"
    assert len(credentials["password"]) == 32
    assert credentials["password"] != _secret(kube, ns, "tan-uyen-kafka")["password"]
    secret = _core(kube).read_namespaced_secret("bac-tan-uyen-kafka", ns)
    (owner,) = secret.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("IOCSite", "bac-tan-uyen", obj["metadata"]["uid"])

    # The dashboard pods get the principal from that Secret, the protocol and mechanism, and the CA mounted.
    apps = kubernetes.client.AppsV1Api(api_client(kube["kubeconfig"]))
    pod = apps.read_namespaced_deployment("bac-tan-uyen-dashboard", ns).spec.template.spec
    env = {e.name: e for e in pod.containers[0].env}
    for variable, key in (("USERNAME", "username"), ("PASSWORD", "password")):
        ref = env[f"IOC_DASHBOARD_KAFKA__{variable}"].value_from.secret_key_ref
        assert (ref.name, ref.key) == ("bac-tan-uyen-kafka", key)
    assert env["IOC_DASHBOARD_KAFKA__SECURITY_PROTOCOL"].value == secure["security_protocol"] == "SASL_SSL"
    assert env["IOC_DASHBOARD_KAFKA__SASL_MECHANISM"].value == secure["sasl_mechanism"]
    assert env["IOC_DASHBOARD_KAFKA__CA_FILE"].value == "/etc/ioc/kafka-ca/ca.crt"
    volume = next(v for v in pod.volumes if v.name == "kafka-ca")
    assert volume.secret.secret_name == CA_SECRET
    assert any(m.name == "kafka-ca" and m.mount_path == "/etc/ioc/kafka-ca" for m in pod.containers[0].volume_mounts)


def test_the_sites_credentials_write_its_own_command_topic_and_nothing_else(
    kube: dict[str, Any], secure: dict[str, Any], sites: dict[str, Any]
) -> None:
    endpoint = _as_site(secure, _secret(kube, sites["namespace"], "bac-tan-uyen-kafka"))
    own = kafka_access.site_command_topic(SITE).name
    assert produce(endpoint, own, b'{"probe": "own"}') is None
    refused = KafkaError.TOPIC_AUTHORIZATION_FAILED
    for topic in (kafka_access.site_command_topic(OTHER).name, topics.INCIDENT_COMMANDS.name):
        error = produce(endpoint, topic, b'{"probe": "forged"}')
        assert error is not None and error.code() == refused, (topic, error)
    codes = fetch_errors(endpoint, topics.READINGS.name, f"probe-{uuid.uuid4().hex[:8]}")
    assert refused in codes, codes
    # Its own commands: written, never read back (the workers read them).
    assert refused in fetch_errors(endpoint, own, f"probe-{uuid.uuid4().hex[:8]}")


def test_a_new_operator_key_rotates_the_password(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    secure: dict[str, Any],
    mosquitto: dict[str, Any],
    sites: dict[str, Any],
    operator: OperatorProcess,
) -> None:
    ns = sites["namespace"]
    before = _secret(kube, ns, "bac-tan-uyen-kafka")
    operator.stop()
    operator.env["IOC_OPERATOR_SECRET_KEY"] = "rotated-" + uuid.uuid4().hex
    operator.start()

    def rotated() -> dict[str, str] | None:
        now = _secret(kube, ns, "bac-tan-uyen-kafka")
        return now if now["password"] != before["password"] else None

    after = wait_for(rotated, 60, f"a new password in the Secret\n{operator.text()[-2000:]}")
    assert after["username"] == before["username"]
    assert_sasl_refused(_as_site(secure, before))

    def accepted() -> bool:
        return produce(_as_site(secure, after), kafka_access.site_command_topic(SITE).name, b"{}") is None

    wait_for(accepted, 30, "the new password to be accepted")


def test_deleting_the_site_deletes_its_principal(
    kube: dict[str, Any], secure: dict[str, Any], sites: dict[str, Any]
) -> None:
    ns = sites["namespace"]
    credentials = _secret(kube, ns, "bac-tan-uyen-kafka")
    other = _secret(kube, ns, "tan-uyen-kafka")
    custom_api(kube).delete_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", "bac-tan-uyen")

    def gone() -> bool:
        try:
            get_site(kube, ns, "bac-tan-uyen")
        except kubernetes.client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, 60, "the site to be deleted")
    assert_sasl_refused(_as_site(secure, credentials))
    # The other site's principal is untouched.
    assert produce(_as_site(secure, other), kafka_access.site_command_topic(OTHER).name, b"{}") is None
