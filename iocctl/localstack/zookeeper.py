"""The local ZooKeeper: one node on loopback for the ClickHouse cluster's replicas and ON CLUSTER DDL.

`start` writes `zoo.cfg` and launches the server from the jars the installer fetched; `is_ready` asks it
`srvr` over its client port, which names its mode only once it serves sessions (`ruok` answers earlier).
"""

from __future__ import annotations

import socket
from pathlib import Path

from iocctl.localstack.common import HOST, ServiceInfo, launch
from iocctl.localstack.install import ZOOKEEPER_VERSION, Installer
from iocctl.localstack.process import free_port, wait_until

__all__ = ["is_ready", "start"]


def start(root: Path, installer: Installer) -> ServiceInfo:
    libs = installer.zookeeper()
    java = installer.java()
    home = root / "zookeeper"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = home / "zoo.cfg"
    # tickTime 500 ms: sessions of a killed ClickHouse replica expire in seconds, not the default's 40 s.
    # forceSync=no: a test stack needs no fsync per transaction (the machine is shared and slow to sync).
    config.write_text(
        "\n".join(
            [
                "# Written by iocctl.localstack: one ZooKeeper node for the local ClickHouse cluster.",
                "tickTime=500",
                f"dataDir={home / 'data'}",
                f"clientPort={port}",
                f"clientPortAddress={HOST}",
                "admin.enableServer=false",
                "4lw.commands.whitelist=ruok,srvr",
                "maxClientCnxns=0",
                "forceSync=no",
                "",
            ]
        ),
        encoding="utf-8",
    )
    log = home / "zookeeper.log"
    argv = [java, "-Xmx256m", "-cp", f"{libs}/*", "org.apache.zookeeper.server.quorum.QuorumPeerMain", config]
    process, launched = launch("zookeeper", argv, log, cwd=home)
    info: ServiceInfo = {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "version": ZOOKEEPER_VERSION,
    }
    wait_until("zookeeper", lambda: is_ready(info), timeout=60, process=process, log_path=log, interval=0.3)
    return info


def is_ready(info: ServiceInfo) -> bool:
    """Whether the node serves sessions: `srvr` reports its mode (not "not currently serving requests")."""
    with socket.create_connection((info["host"], int(info["port"])), timeout=2) as conn:
        conn.sendall(b"srvr")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return b"Mode: standalone" in answer
