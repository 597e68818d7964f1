"""The local stack: real Mosquitto, Kafka, ClickHouse, etcd and kube-apiserver on loopback, installed on demand."""

from ioc.localstack.install import Installer, MissingPrerequisite, Toolchain
from ioc.localstack.process import ServiceStartError
from ioc.localstack.services import SERVICES, ServiceInfo
from ioc.localstack.stack import Stack, default_cache_dir, default_stack_dir

__all__ = [
    "SERVICES",
    "Installer",
    "MissingPrerequisite",
    "ServiceInfo",
    "ServiceStartError",
    "Stack",
    "Toolchain",
    "default_cache_dir",
    "default_stack_dir",
]
