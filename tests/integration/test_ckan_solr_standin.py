"""The Solr stand-in (test infrastructure for the local CKAN): the query subset CKAN relies on."""

from __future__ import annotations

import json
import sys
import threading
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import solr_standin as solr  # noqa: E402

DOCS = [
    {"index_id": "1", "id": "a", "name": "pop-v1-0-0", "site_id": "default", "state": "active",
     "title": "Population census", "capacity": "public", "permission_labels": ["public"],
     "metadata_modified": "2999-01-01T00:00:00Z", "series": "pop", "version_order": "000001",
     "extras_title_ru": "Перепись населения", "res_format": ["CSV", "JSON"]},
    {"index_id": "2", "id": "b", "name": "pop-v1-1-0", "site_id": "default", "state": "active",
     "title": "Population census update", "capacity": "private",
     "permission_labels": ["member-org1"], "metadata_modified": "2020-01-01T00:00:00Z",
     "series": "pop", "version_order": "000002", "res_format": ["CSV"]},
    {"index_id": "3", "id": "c", "name": "mig-v1-0-0", "site_id": "default", "state": "deleted",
     "title": "Migration flows", "capacity": "public", "permission_labels": ["public"],
     "metadata_modified": "2020-01-01T00:00:00Z", "series": "pop-extra"},
]


@pytest.fixture
def core(tmp_path: Path) -> solr.Core:
    c = solr.Core(str(tmp_path / "index.json"))
    c.add(json.loads(json.dumps(DOCS)))
    return c


def names(core: solr.Core, **params: str | list[str]) -> list[str]:
    p = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return [d["name"] for d in core.select(p)["response"]["docs"]]


def test_ckan_style_filters(core):
    fq = ['+site_id:"default"', "+capacity:public series:\"pop\" +state:(active)"]
    assert names(core, q="*:*", fq=fq, **{"q.op": "AND"}) == ["pop-v1-0-0"]
    labels = '+permission_labels:("public" OR "member-org1")'
    assert sorted(names(core, q="*:*", fq=[labels, "+state:active"])) == ["pop-v1-0-0", "pop-v1-1-0"]
    assert names(core, q='name:"pop-v1-1-0" OR id:"pop-v1-1-0"', fq="+site_id:\"default\"") == [
        "pop-v1-1-0"]


def test_string_fields_are_exact_and_text_fields_tokenised(core):
    assert names(core, q='series:"pop"') != [] and "mig-v1-0-0" not in names(core, q="series:pop")
    assert sorted(names(core, q="title:census")) == ["pop-v1-0-0", "pop-v1-1-0"]
    assert names(core, q="extras_title_ru:перепись") == ["pop-v1-0-0"]
    assert names(core, q="res_format:JSON") == ["pop-v1-0-0"]
    assert names(core, q="title:migr*") == ["mig-v1-0-0"]


def test_dismax_sort_range_negation_facets(core):
    assert names(core, q="census update", defType="dismax", qf="name^4 title^4 text",
                 mm="2<-1 5<80%") == ["pop-v1-1-0"]
    assert names(core, q="*:*", fq="series:pop", sort="version_order desc") == [
        "pop-v1-1-0", "pop-v1-0-0"]
    assert names(core, q="metadata_modified:[NOW-1DAY TO *]") == ["pop-v1-0-0"]
    assert sorted(names(core, q="-state:deleted")) == ["pop-v1-0-0", "pop-v1-1-0"]
    out = core.select({"q": ["*:*"], "facet": ["true"], "facet.field": ["res_format"],
                       "facet.mincount": ["1"], "rows": ["0"]})
    assert out["response"]["docs"] == [] and out["response"]["numFound"] == 3
    assert out["facet_counts"]["facet_fields"]["res_format"] == ["CSV", 2, "JSON", 1]


def test_bad_sort_and_bad_query_are_errors(core):
    with pytest.raises(solr.QueryError, match="Can't determine a Sort Order"):
        core.select({"q": ["*:*"], "sort": ["name sideways"]})
    with pytest.raises(solr.QueryError):
        core.select({"q": ["title:(census"]})


def test_delete_by_query_and_persistence(core, tmp_path: Path):
    core.update(b'<delete><query>+(id:"a" OR name:"a") AND +site_id:"default"</query></delete>',
                "text/xml")
    reloaded = solr.Core(str(tmp_path / "index.json"))
    assert sorted(d["id"] for d in reloaded.docs.values()) == ["b", "c"]
    reloaded.update(json.dumps([{"index_id": "9", "id": "z", "name": "zz"}]).encode(),
                    "application/json")
    assert "9" in solr.Core(str(tmp_path / "index.json")).docs


def test_http_endpoints(core):
    solr.Handler.core = core
    server = ThreadingHTTPServer(("127.0.0.1", 0), solr.Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/solr/ckan"
    try:
        with urllib.request.urlopen(f"{base}/schema?wt=schema.xml") as r:
            assert b'name="ckan-2.12"' in r.read()
        with urllib.request.urlopen(f"{base}/admin/ping") as r:
            assert json.load(r)["status"] == "OK"
        with urllib.request.urlopen(f"{base}/select/?q=name:pop-v1-0-0&wt=json&fl=id") as r:
            assert json.load(r)["response"]["docs"] == [{"id": "a"}]
        req = urllib.request.Request(f"{base}/select/?sort=bad", method="GET")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req)
        assert exc.value.code == 400
    finally:
        server.shutdown()
        server.server_close()
