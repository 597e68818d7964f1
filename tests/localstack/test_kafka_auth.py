"""The local Kafka's authenticated configuration (IOC_STACK_KAFKA_AUTH), without starting it.

The broker itself is attacked in tests/security/test_kafka_identity.py; here: what the configuration
says, the certificate clients check, and the secrets' file modes.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from cryptography import x509

from ioc import kafka_access
from iocctl.localstack import kafka


def test_clients_get_only_scram_over_tls_and_no_acl_means_refused(tmp_path: Path) -> None:
    node = kafka._Node(1, tmp_path, 9093, 9094, None)
    lines = kafka._auth_properties(node, tmp_path / "broker.pem", tmp_path / "ca.crt", "admin-secret", "controllers")
    props = dict(line.split("=", 1) for line in lines if "=" in line)
    assert props["listeners"] == "CLIENT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    # No component is a super user: only the installer's admin and the controller's own principal.
    assert props["super.users"] == "User:ioc-admin;User:ioc-controller"
    assert all(f"User:{name}" not in props["super.users"] for name in kafka_access.COMPONENT_GRANTS)


def test_the_broker_certificate_is_for_loopback_and_its_key_is_private(tmp_path: Path) -> None:
    ca_file, keystore = kafka._make_tls(tmp_path / "tls")
    assert keystore.stat().st_mode & 0o077 == 0
    cert = x509.load_pem_x509_certificates(keystore.read_bytes())[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    # The CA verifies it, as a client with `ssl.ca.location` will.
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert ssl.create_default_context(cafile=str(ca_file)).cert_store_stats()["x509_ca"] == 1
