"""The local stack: real Mosquitto, Kafka, ClickHouse, etcd and kube-apiserver on loopback, installed on demand."""

from iocctl.localstack.install import Installer, MissingPrerequisite, Toolchain
from iocctl.localstack.process import ServiceStartError
from iocctl.localstack.services import SERVICES, ServiceInfo, is_ready, needs, relaunch, start_service
from iocctl.localstack.stack import Stack, default_cache_dir, default_stack_dir

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
    "is_ready",
    "needs",
    "relaunch",
    "start_service",
]
