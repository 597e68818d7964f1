"""A site's Kafka identity: its command topic and its SCRAM principal with exactly the access model's grants.

The IOCSite reconcile (operators.sites) calls `ensure_identity` for a site that runs its own dashboard when
the operator's own Kafka endpoint authenticates (SASL), and `remove_identity` when the site goes or stops
needing one; the dashboards get the principal through the site's `<site>-kafka` Secret
(operators.manifests). Who may do what is `ioc.kafka_access`; the admin calls are `ioc.clients.kafka_admin`.
"""

from __future__ import annotations

from ioc import kafka_access
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint

__all__ = ["ensure_identity", "remove_identity"]


def ensure_identity(endpoint: KafkaEndpoint, unit: str, password: str) -> str:
    """Create the site's command topic if missing, give `site_principal(unit)` `password` and exactly
    `site_grants(unit)` (ACLs beyond them are removed); returns the principal. Idempotent.

    `endpoint` is the operator's own: it may create `ioc.*` topics and alter the cluster's SCRAM users and ACLs.
    """
    principal = kafka_access.site_principal(unit)
    kafka_admin.ensure_topics(endpoint, [kafka_access.site_command_topic(unit)])
    kafka_admin.ensure_principal(
        endpoint, principal, password, kafka_access.site_grants(unit), mechanism=endpoint.sasl_mechanism
    )
    return principal


def remove_identity(endpoint: KafkaEndpoint, unit: str) -> str:
    """Delete the site's principal: its ACLs and SCRAM credential (absent ones are fine); returns its name.

    The command topic stays: commands already written to it are still relayed by the workers, and a site
    of the other edition with the same unit code would write the same topic.
    """
    principal = kafka_access.site_principal(unit)
    kafka_admin.remove_principal(endpoint, principal, mechanism=endpoint.sasl_mechanism)
    return principal
