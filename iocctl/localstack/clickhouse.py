"""The local ClickHouse server: one server on loopback with a password-protected default user and users.d/.

`start` writes its configuration (kept to what Debian's 18.16 understands) and launches it; `is_ready` pings it.
"""

from __future__ import annotations

from pathlib import Path

from iocctl.localstack.common import HOST, ServiceInfo, http_get, launch, new_secret
from iocctl.localstack.install import Installer
from iocctl.localstack.node import NODE_IP, POD_CIDR, node_ip_here
from iocctl.localstack.process import free_port, wait_until

__all__ = ["is_ready", "start"]


def start(root: Path, installer: Installer) -> ServiceInfo:
    command = installer.clickhouse()
    home = root / "clickhouse"
    for sub in ("data", "tmp", "user_files", "format_schemas", "log", "users.d"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    password = new_secret()
    # With the local node up, pods reach this server on the node IP too (published as a Service by the node).
    on_node = node_ip_here()
    # listen_try: a restart after the node went down (its address gone) keeps serving on loopback, not exit 70.
    node_listen = f"\n    <listen_host>{NODE_IP}</listen_host>\n    <listen_try>1</listen_try>" if on_node else ""
    node_networks = f"<ip>{NODE_IP}</ip><ip>{POD_CIDR}</ip>" if on_node else ""
    config = home / "config.xml"
    # 18.16 reads <yandex>; newer servers accept it too. Settings kept to what 18.16 understands.
    config.write_text(
        f"""<?xml version="1.0"?>
<!-- Written by iocctl.localstack: one ClickHouse server on loopback. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{home / "log" / "clickhouse-server.log"}</log>
        <errorlog>{home / "log" / "clickhouse-server.err.log"}</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>{HOST}</listen_host>{node_listen}
    <tcp_port>{port}</tcp_port>
    <http_port>{http_port}</http_port>
    <path>{home / "data"}/</path>
    <tmp_path>{home / "tmp"}/</tmp_path>
    <user_files_path>{home / "user_files"}/</user_files_path>
    <format_schema_path>{home / "format_schemas"}/</format_schema_path>
    <users_config>{home / "users.xml"}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
</yandex>
""",
        encoding="utf-8",
    )
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
    log = home / "log" / "stdout.log"
    process, launched = launch("clickhouse", [*command, f"--config-file={config}"], log, cwd=home)

    def ready() -> bool:
        return http_get(f"http://{HOST}:{http_port}/ping")[1].strip() == "Ok."

    wait_until("clickhouse", ready, timeout=60, process=process, log_path=home / "log" / "clickhouse-server.err.log")
    version = http_get(f"http://{HOST}:{http_port}/?user=default&password={password}&query=SELECT%20version()")[
        1
    ].strip()
    return {
        "pid": process.pid,
        **launched,
        "log": str(home / "log" / "clickhouse-server.log"),
        "host": HOST,
        "port": port,
        "http_port": http_port,
        "user": "default",
        "password": password,
        "version": version,
        "users_d": str(home / "users.d"),
        **({"node_host": NODE_IP} if on_node else {}),
    }


def is_ready(info: ServiceInfo) -> bool:
    """Whether the server answers its HTTP ping."""
    return http_get(f"http://{info['host']}:{info['http_port']}/ping")[1].strip() == "Ok."
