"""The dbt docs site: generated against a real warehouse, every node documented, served, rendered by Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from ecompipe.reports.docs_site import SITE_FILES, GeneratedDocs, default_port, generate_docs
from tests.helpers.browser import needs_chromium, run_chromium
from tests.helpers.sandbox import Pipeline

MARTS = ("fct_transactions", "agg_customer_daily", "agg_customer_rolling", "fct_transaction_features")
DOCUMENTED_NODES = ("model", "analysis", "seed", "snapshot")


@dataclass
class Docs:
    pipeline: Pipeline
    generated: GeneratedDocs
    root: Path

    @property
    def manifest(self) -> dict:
        return json.loads((self.generated.site_dir / "manifest.json").read_text())

    @property
    def catalog(self) -> dict:
        return json.loads((self.generated.site_dir / "catalog.json").read_text())


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Docs:
    """One day built, then the docs generated against that warehouse, in a throwaway target path."""
    root = tmp_path_factory.mktemp("docs_site")
    pipeline = Pipeline.with_one_day(root, "2024-01-01", rows=150)
    generated = generate_docs(root / "site", root / "docs_build", env=pipeline.env())
    return Docs(pipeline, generated, root)


def test_docs_are_generated_with_the_catalog_of_the_warehouse(docs: Docs) -> None:
    assert docs.generated.catalog, docs.generated.note
    assert sorted(path.name for path in docs.generated.site_dir.iterdir()) == sorted(SITE_FILES)
    tables = {node["metadata"]["name"] for node in docs.catalog["nodes"].values()}
    assert set(MARTS) <= tables
    static = (docs.generated.site_dir / "static_index.html").read_text()
    assert all(mart in static for mart in MARTS), "the single-file site embeds the manifest"


def _undocumented(unique_id: str, node: dict) -> list[str]:
    """The node itself (if its description is empty) and its columns without a description."""
    missing = [unique_id] if not node["description"].strip() else []
    return missing + [f"{unique_id}.{name}" for name, col in node["columns"].items() if not col["description"].strip()]


def test_every_model_source_column_and_exposure_has_a_description(docs: Docs) -> None:
    manifest = docs.manifest
    missing = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] in DOCUMENTED_NODES and node["package_name"] == "ecommerce":
            missing += _undocumented(unique_id, node)
    for unique_id, source in manifest["sources"].items():
        missing += _undocumented(unique_id, source)
        if not source["source_description"].strip():
            missing.append(f"source {source['source_name']}")
    missing += [unique_id for unique_id, node in manifest["exposures"].items() if not node["description"].strip()]
    assert not missing, f"undocumented in dbt_project (add a description): {missing}"
    assert {f"model.ecommerce.{mart}" for mart in MARTS} <= set(manifest["nodes"])


def test_every_column_of_every_model_table_is_documented(docs: Docs) -> None:
    """A column the SQL adds without a YAML entry would be in the warehouse but not described."""
    manifest = docs.manifest
    undocumented = {}
    for unique_id, table in docs.catalog["nodes"].items():
        if unique_id.startswith("model."):
            documented = {name.lower() for name in manifest["nodes"][unique_id]["columns"]}
            extra = sorted(set(table["columns"]) - documented)
            if extra:
                undocumented[unique_id] = extra
    assert not undocumented, f"columns in the warehouse without a YAML description: {undocumented}"


def test_every_data_test_has_a_description(docs: Docs) -> None:
    manifest = docs.manifest
    tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    assert tests
    missing = sorted(node["name"] for node in tests if not node["description"].strip())
    missing += sorted(name for name, test in manifest.get("unit_tests", {}).items() if not test["description"].strip())
    assert not missing, f"data tests without a `description:` in their YAML: {missing}"


def test_the_example_analyses_compile_and_run_on_the_warehouse(docs: Docs) -> None:
    analyses = {n["name"]: n for n in docs.manifest["nodes"].values() if n["resource_type"] == "analysis"}
    assert {"top_customers", "revenue_by_day_and_category", "data_quality_trend", "parquet_exports"} <= set(analyses)
    with duckdb.connect(str(docs.pipeline.warehouse), read_only=True) as con:
        con.execute("set variable pipeline_data_dir = ?", [str(docs.pipeline.data_dir)])
        for name, node in analyses.items():
            assert node["depends_on"]["nodes"], f"{name}: lineage from its `-- depends_on: {{{{ ref() }}}}` comment"
            assert con.sql(node["compiled_code"]).fetchall(), f"analysis {name} returned no row"


def test_docs_are_generated_without_a_warehouse_and_despite_a_broken_raw_file(tmp_path: Path) -> None:
    """No warehouse: an empty catalog, nothing created. A raw file that fails compiling: no compiled SQL."""
    pipeline = Pipeline(data_dir=tmp_path / "data", work_dir=tmp_path / "work")
    broken = pipeline.raw_dir / "2024-01-09" / "transactions.csv"
    broken.parent.mkdir(parents=True)
    broken.write_text("foo,bar\n1,2\n")
    started = time.monotonic()
    generated = generate_docs(tmp_path / "site", tmp_path / "build", env=pipeline.env())
    assert time.monotonic() - started < 90, "no waiting for a warehouse that does not exist"
    assert not generated.catalog and "no warehouse yet" in generated.note
    assert "compiled SQL left out" in generated.note and "2024-01-09" in generated.note
    assert not pipeline.warehouse.exists()
    assert json.loads((generated.site_dir / "catalog.json").read_text())["nodes"] == {}
    manifest = json.loads((generated.site_dir / "manifest.json").read_text())
    assert {f"model.ecommerce.{mart}" for mart in MARTS} <= set(manifest["nodes"])
    assert manifest["nodes"]["model.ecommerce.fct_transactions"]["database"] == "warehouse"
    assert "fct_transactions" in (generated.site_dir / "static_index.html").read_text()


def test_the_default_port_is_stable_and_never_8080(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_DOCS_PORT", raising=False)
    assert 35_000 <= default_port() < 40_000 and default_port() == default_port()
    monkeypatch.setenv("DBT_DOCS_PORT", "18123")
    assert default_port() == 18123


@pytest.fixture
def served(docs: Docs) -> Iterator[str]:
    """`ecompipe docs serve` on a free port (--port 0); yields the address it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ecompipe", "docs", "serve", "--dir", str(docs.generated.site_dir)]
        + ["--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", first_line)
        assert match, f"no address printed: {first_line!r} {process.stderr.read() if process.poll() else ''}"
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_server_serves_the_site_files_only(served: str) -> None:
    assert _status(served) == 200
    assert _status(f"{served}manifest.json?cb=123") == 200
    assert _status(f"{served}catalog.json") == 200
    assert _status(f"{served}static_index.html") == 200
    for other in ("run_results.json", "partial_parse.msgpack", "../data/warehouse.duckdb", "%2e%2e/work"):
        assert _status(f"{served}{other}") == 404, other


@needs_chromium
def test_chromium_renders_the_served_docs_with_the_marts(docs: Docs, served: str) -> None:
    dom, _ = run_chromium(served, docs.root)
    listed = set(re.findall(r'data-nav-unique-id="model\.ecommerce\.([a-z_]+)"', dom))
    assert set(MARTS) <= listed, f"marts missing from the rendered model list: {sorted(listed)}"
    screenshot = docs.root / "docs.png"
    page, _ = run_chromium(f"{served}#!/model/model.ecommerce.fct_transactions", docs.root, screenshot=screenshot)
    assert "Clean transactions, one row per transaction" in page, "the model page shows its description"
