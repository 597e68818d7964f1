"""The `ioc operator` and `ioc sites` commands: CRDs in the chart, the operator's role, the province as code."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from iocctl.cli import cli
from operators import crds, rbac
from tests.operators.conftest import ROOT


def test_sites_render_writes_the_whole_tree(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sites", "render", "--namespace", "bd"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.output))
    assert documents[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "bd", "labels": {"app.kubernetes.io/part-of": "ioc-platform"}},
    }
    sites = documents[1:]
    assert len(sites) == 101 and {s["metadata"]["namespace"] for s in sites} == {"bd"}
    out = tmp_path / "hcm.yaml"
    result = CliRunner().invoke(cli, ["sites", "render", "--edition", "2025", "--no-namespace", "-o", str(out)])
    assert result.exit_code == 0 and "37 IOCSites" in result.output
    assert all(d["kind"] == "IOCSite" for d in yaml.safe_load_all(out.read_text(encoding="utf-8")))


def test_operator_crds_export_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["operator", "crds", "--check", str(ROOT / crds.CHART_CRDS)]).exit_code == 0
    stale = runner.invoke(cli, ["operator", "crds", "--check", str(tmp_path)])
    assert stale.exit_code != 0 and "missing" in stale.output
    written = runner.invoke(cli, ["operator", "crds", str(tmp_path)])
    assert written.exit_code == 0 and len(list(tmp_path.glob("*.yaml"))) == 3
    assert runner.invoke(cli, ["operator", "crds", "--check", str(tmp_path)]).exit_code == 0


def test_operator_rbac_prints_the_cluster_role() -> None:
    result = CliRunner().invoke(cli, ["operator", "rbac", "--name", "x"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == rbac.cluster_role("x")
