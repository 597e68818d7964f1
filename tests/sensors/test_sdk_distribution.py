"""The SDK's own wheel: only what publishing needs, installed alone in a fresh virtualenv, publishing for real."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from iocctl import sdkdist
from tests.sensors.test_sdk import Listener

# What a vendor must never have to install to publish.
PLATFORM_ONLY = ("faust", "clickhouse_driver", "confluent_kafka", "kopf", "kubernetes", "streamlit", "fastapi")


def test_the_sdk_holds_its_imports_and_nothing_of_the_servers() -> None:
    contents = sdkdist.contents()
    assert {"sensors.sdk.client", "sensors.sdk.outbox", "sensors.sdk.example", "ioc.events", "ioc.topics"} <= set(
        contents.modules
    )
    assert not [m for m in contents.modules if m.split(".")[0] in ("streams", "operators", "dashboards", "iocctl")]
    assert not [m for m in contents.modules if m.startswith("sensors.") and not m.startswith("sensors.sdk")]
    names = {r.split(">")[0].split("=")[0].lower() for r in contents.requirements}
    assert "paho-mqtt" in names and "msgspec" in names
    assert not names & {"faust-streaming", "clickhouse-driver", "confluent-kafka", "kopf", "streamlit", "fastapi"}


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with nothing but the SDK's wheel and its requirements, at the versions tested here."""
    root = tmp_path_factory.mktemp("sdk")
    uv = Path(sys.executable).with_name("uv")
    wheel = sdkdist.build_wheel(root / "dist", uv=uv)
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line for line in archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist")]
    assert len(requires) == len(sdkdist.contents().requirements), requires
    # Pin what the platform's lock resolved, so the fresh install is the combination tested (and served from cache).
    pins = root / "constraints.txt"
    pins.write_text(
        "".join(f"{d.metadata['Name']}=={d.version}\n" for d in importlib.metadata.distributions()), encoding="utf-8"
    )
    venv = root / "venv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(python), "-c", str(pins), str(wheel)],
        check=True,
        timeout=300,
    )
    return python


def test_the_wheel_installs_alone_without_the_platform(sdk_python: Path) -> None:
    probe = (
        "import importlib.util, sys\n"
        "import sensors.sdk, sensors.sdk.example\n"
        f"missing = [m for m in {PLATFORM_ONLY!r} if importlib.util.find_spec(m) is None]\n"
        "present = [m for m in ('streams', 'operators', 'dashboards', 'iocctl', 'sensors.bridge') "
        "if importlib.util.find_spec(m) is not None]\n"
        "print(len(missing), present)\n"
    )
    done = subprocess.run(
        [str(sdk_python), "-c", probe], capture_output=True, text=True, timeout=60, check=False, cwd=sdk_python.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(PLATFORM_ONLY)), "[]"]


def test_the_installed_example_publishes_over_tls(
    sdk_python: Path, mosquitto: dict[str, Any], vendor: tuple[str, str]
) -> None:
    listener = Listener(mosquitto)
    try:
        done = subprocess.run(
            [
                str(sdk_python),
                "-m",
                "sensors.sdk.example",
                "--host",
                mosquitto["host"],
                "--port",
                str(mosquitto["tls_port"]),
                "--ca-file",
                mosquitto["ca_file"],
                "--vendor",
                vendor[0],
                "--password",
                vendor[1],
                "--count",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=sdk_python.parent,  # not the repository: the installed package must be what runs
        )
        assert done.returncode == 0, done.stderr
        assert "sent 9 readings and 1 camera event" in done.stdout
        assert len(listener.wait_for(5)) == 5  # 3 single readings, one batch, one camera event
    finally:
        listener.close()
