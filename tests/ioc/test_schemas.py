"""The committed JSON Schemas match the contracts, and they accept what the decoders accept."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ioc import schemas
from iocctl.cli import cli

COMMITTED = Path(__file__).parents[2] / "schemas"


def test_committed_schemas_have_not_drifted() -> None:
    problems = schemas.diff(COMMITTED)
    assert not problems, f"run `ioc schema export schemas`: {problems}"


def test_export_writes_one_file_per_contract(tmp_path: Path) -> None:
    written = schemas.export(tmp_path)
    assert {p.name for p in written} == {f"{t.__struct_config__.tag}.json" for t in schemas.EXPORTED}
    assert schemas.diff(tmp_path) == []
    (tmp_path / "stray.json").write_text("{}")
    written[0].write_text("{}")
    assert len(schemas.diff(tmp_path)) == 2


def test_schema_tag_is_optional_but_fixed() -> None:
    schema = schemas.json_schema(schemas.EXPORTED[0])
    assert "schema" not in schema["required"]
    assert schema["properties"]["schema"]["const"] == "ioc.sensor-reading.v1"
    assert schema["additionalProperties"] is False


def test_cli_export_then_check(tmp_path: Path) -> None:
    runner = CliRunner()
    exported = runner.invoke(cli, ["schema", "export", str(tmp_path)])
    assert exported.exit_code == 0 and "ioc.incident.v1.json" in exported.output
    assert runner.invoke(cli, ["schema", "check", str(tmp_path)]).exit_code == 0
    (tmp_path / "ioc.incident.v1.json").write_text(json.dumps({"stale": True}))
    checked = runner.invoke(cli, ["schema", "check", str(tmp_path)])
    assert checked.exit_code != 0
    assert "ioc.incident.v1.json: differs" in checked.output
