"""The local ClickHouse: one server on loopback, or shards x replicas over ZooKeeper, with users.d/.

`start` writes each server's configuration (kept to what Debian's 18.16 understands) and launches it; `is_ready`
pings the entry server; `relaunch` starts again the servers that are not running (fault tests).
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from iocctl.localstack.common import HOST, ServiceInfo, http_get, launch, new_secret
from iocctl.localstack.install import Installer
from iocctl.localstack.node import NODE_IP, POD_CIDR, node_ip_here
from iocctl.localstack.process import free_port, is_alive, start_process, stop_process, wait_until

__all__ = ["CLUSTER", "component_env", "is_ready", "relaunch", "start"]


CLUSTER: Final = "ioc"
"""The cluster name of the local stack's `remote_servers` (what `ClickHouseEndpoint.cluster` names)."""
DDL_QUEUE: Final = "/clickhouse/task_queue/ddl"


@dataclasses.dataclass(frozen=True)
class _Server:
    home: Path
    port: int
    http_port: int
    shard: int = 1
    replica: int = 1
    interserver_port: int | None = None

    @property
    def name(self) -> str:
        return f"s{self.shard}r{self.replica}"


def start(
    root: Path, installer: Installer, *, shards: int = 1, replicas: int = 1, zookeeper: ServiceInfo | None = None
) -> ServiceInfo:
    """One server (the default), or `shards` x `replicas` servers forming the cluster `ioc` over `zookeeper`.

    A cluster's servers share one users.xml (and its users.d/, where the operator writes site users), each has
    its own data, ports and macros ({shard}, {replica}, {cluster}); the record's host and ports are the first
    server's, the entry point every client uses, and `servers` lists them all.
    """
    if shards < 1 or replicas < 1:
        raise ValueError(f"a ClickHouse cluster needs at least 1 shard and 1 replica, not {shards} x {replicas}")
    cluster = shards * replicas > 1
    if cluster and zookeeper is None:
        raise ValueError(f"a ClickHouse cluster of {shards} x {replicas} servers needs ZooKeeper running first")
    command = installer.clickhouse()
    home = root / "clickhouse"
    (home / "users.d").mkdir(parents=True, exist_ok=True)
    password = new_secret()
    if cluster:
        servers = [
            _Server(home / f"s{s}r{r}", free_port(), free_port(), s, r, free_port())
            for s in range(1, shards + 1)
            for r in range(1, replicas + 1)
        ]
    else:
        servers = [_Server(home, free_port(), free_port())]
    # With the local node up, pods reach this server on the node IP too (published as a Service by the node).
    on_node = node_ip_here()
    _write_users(home, password, on_node=on_node)
    launched: list[ServiceInfo] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for server in servers:
            extra = _cluster_xml(server, servers, password, zookeeper) if cluster else ""
            config = _write_config(server, home / "users.xml", extra, on_node=on_node and server is servers[0])
            log = server.home / "log" / "stdout.log"
            process, how = launch(
                f"clickhouse-{server.name}", [*command, f"--config-file={config}"], log, cwd=server.home
            )
            processes.append(process)
            launched.append(
                {
                    "pid": process.pid,
                    **how,
                    "log": str(server.home / "log" / "clickhouse-server.log"),
                    "err_log": str(server.home / "log" / "clickhouse-server.err.log"),
                    "host": HOST,
                    "port": server.port,
                    "http_port": server.http_port,
                    "shard": server.shard,
                    "replica": server.replica,
                }
            )
        for member, process in zip(launched, processes, strict=True):
            _wait_ready(member, timeout=60 + 15 * (len(servers) - 1), process=process)
            if cluster:  # ready for replicated tables and ON CLUSTER DDL only once its ZooKeeper session is up
                wait_until(
                    f"clickhouse (port {member['port']}) session with ZooKeeper",
                    functools.partial(_zookeeper_answers, member, password),
                    timeout=60,
                    process=process,
                    log_path=Path(member["err_log"]),
                    interval=0.5,
                )
    except Exception:
        for member in launched:  # never leave half a cluster behind
            stop_process(int(member["pid"]), timeout=5)
        raise
    first = launched[0]
    version = http_get(
        f"http://{HOST}:{first['http_port']}/?user=default&password={password}&query=SELECT%20version()"
    )[1].strip()
    info: ServiceInfo = {
        **first,
        "user": "default",
        "password": password,
        "version": version,
        "users_d": str(home / "users.d"),
        **({"node_host": NODE_IP} if on_node else {}),
    }
    if cluster:
        info |= {"cluster": CLUSTER, "shards": shards, "replicas": replicas, "servers": launched}
    return info


def _write_config(server: _Server, users: Path, extra: str, *, on_node: bool) -> Path:
    home = server.home
    for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    # listen_try: a restart after the node went down (its address gone) keeps serving on loopback, not exit 70.
    node_listen = f"\n    <listen_host>{NODE_IP}</listen_host>\n    <listen_try>1</listen_try>" if on_node else ""
    config = home / "config.xml"
    # 18.16 reads <yandex>; newer servers accept it too. Settings kept to what 18.16 understands.
    config.write_text(
        f"""<?xml version="1.0"?>
<!-- Written by iocctl.localstack: a ClickHouse server on loopback. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{home / "log" / "clickhouse-server.log"}</log>
        <errorlog>{home / "log" / "clickhouse-server.err.log"}</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>{HOST}</listen_host>{node_listen}
    <tcp_port>{server.port}</tcp_port>
    <http_port>{server.http_port}</http_port>
    <path>{home / "data"}/</path>
    <tmp_path>{home / "tmp"}/</tmp_path>
    <user_files_path>{home / "user_files"}/</user_files_path>
    <format_schema_path>{home / "format_schemas"}/</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>{extra}
</yandex>
""",
        encoding="utf-8",
    )
    return config


def _cluster_xml(server: _Server, servers: list[_Server], password: str, zookeeper: ServiceInfo | None) -> str:
    """The cluster part of one server's config: remote_servers, its macros, ZooKeeper, the DDL queue, replication."""
    assert zookeeper is not None
    shards = sorted({s.shard for s in servers})
    # internal_replication: a Distributed table writes each block to one replica of its shard and the replicated
    # table copies it to the others (writing every replica itself would defeat block deduplication).
    shard_xml = "".join(
        "\n            <shard>\n                <internal_replication>true</internal_replication>"
        + "".join(
            f"\n                <replica><host>{HOST}</host><port>{s.port}</port>"
            f"<user>default</user><password>{password}</password></replica>"
            for s in servers
            if s.shard == shard
        )
        + "\n            </shard>"
        for shard in shards
    )
    return f"""
    <interserver_http_host>{HOST}</interserver_http_host>
    <interserver_http_port>{server.interserver_port}</interserver_http_port>
    <remote_servers>
        <{CLUSTER}>{shard_xml}
        </{CLUSTER}>
    </remote_servers>
    <macros>
        <cluster>{CLUSTER}</cluster>
        <shard>{server.shard}</shard>
        <replica>{server.name}</replica>
    </macros>
    <zookeeper>
        <node><host>{zookeeper["host"]}</host><port>{zookeeper["port"]}</port></node>
        <session_timeout_ms>6000</session_timeout_ms>
    </zookeeper>
    <distributed_ddl><path>{DDL_QUEUE}</path></distributed_ddl>"""


def _write_users(home: Path, password: str, *, on_node: bool) -> None:
    node_networks = f"<ip>{NODE_IP}</ip><ip>{POD_CIDR}</ip>" if on_node else ""
    (home / "users.xml").write_text(
        f"""<?xml version="1.0"?>
<!-- Written by iocctl.localstack. The operator adds each site's user, with its own read-only profile
     (memory, time and result-size limits) and quota, as a file in users.d/ (reloaded live). -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password>{password}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip>{node_networks}</networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
""",
        encoding="utf-8",
    )


def _wait_ready(member: ServiceInfo, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    wait_until(
        f"clickhouse (port {member['port']})",
        lambda: is_ready(member),
        timeout=timeout,
        process=process,
        log_path=Path(member["err_log"]),
    )


def _zookeeper_answers(member: ServiceInfo, password: str) -> bool:
    query = urllib.parse.urlencode(
        {"user": "default", "password": password, "query": "SELECT count() FROM system.zookeeper WHERE path = '/'"}
    )
    return http_get(f"http://{HOST}:{member['http_port']}/?{query}")[0] == 200


def relaunch(info: ServiceInfo, *, timeout: float = 120) -> ServiceInfo:
    """Start the servers of the stack's ClickHouse that are not running, same data and ports; wait until ready."""
    members = [{**m} for m in info.get("servers", ())] or [{**info, "err_log": info.get("err_log", info["log"])}]
    for member in members:
        if not is_alive(int(member["pid"])):
            process = start_process(
                f"clickhouse-{member.get('shard', 1)}-{member.get('replica', 1)}",
                member["argv"],
                Path(member["stdout_log"]),
                cwd=Path(member["cwd"]) if member.get("cwd") else None,
            )
            member["pid"] = process.pid
            _wait_ready(member, timeout=timeout, process=process)
    if "servers" not in info:
        return {**info, "pid": members[0]["pid"]}
    return {**info, "servers": members, "pid": members[0]["pid"]}


def is_ready(info: ServiceInfo) -> bool:
    """Whether the server answers its HTTP ping."""
    return http_get(f"http://{info['host']}:{info['http_port']}/ping")[1].strip() == "Ok."


def component_env(prefix: str, info: Mapping[str, Any]) -> dict[str, str]:
    """The environment a component (`prefix`: IOC_STREAMS_, IOC_OPERATOR_, ...) reads this ClickHouse from.

    On a stack started with `ioc stack up --clickhouse-cluster`, the components write through its cluster."""
    return {
        f"{prefix}CLICKHOUSE__HOST": info["host"],
        f"{prefix}CLICKHOUSE__PORT": str(info["port"]),
        f"{prefix}CLICKHOUSE__HTTP_PORT": str(info["http_port"]),
        f"{prefix}CLICKHOUSE__USER": info["user"],
        f"{prefix}CLICKHOUSE__PASSWORD": info["password"],
        **({f"{prefix}CLICKHOUSE__CLUSTER": info["cluster"]} if info.get("cluster") else {}),
    }
