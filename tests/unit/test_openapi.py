"""docs/openapi.json is the document the read API serves today, and it documents every route
with its errors."""

from __future__ import annotations

import orjson

from streams.api.openapi import OUT, document, main


def test_the_committed_openapi_document_is_current() -> None:
    assert OUT.read_text(encoding="utf-8") == document(), (
        "docs/openapi.json is stale: run python -m streams.api.openapi"
    )
    assert main(["--check"]) == 0


def test_every_v1_route_documents_its_errors_and_needs_a_key() -> None:
    doc = orjson.loads(document())
    paths = doc["paths"]
    v1 = {path: ops["get"] for path, ops in paths.items() if path.startswith("/v1/")}
    assert set(v1) == {
        "/v1/leaderboards/{score}", "/v1/leaderboards/{score}/feed", "/v1/creators/{creator_id}",
        "/v1/creators/{creator_id}/changes", "/v1/creators/{creator_id}/feed", "/v1/search",
    }  # fmt: skip
    for path, op in v1.items():
        assert {"400", "401", "403", "429"} <= set(op["responses"]), path
        assert op["security"], path
        if "{creator_id}" in path:
            assert "404" in op["responses"], path
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in paths[path]["get"]
    search = {p["name"] for p in v1["/v1/search"]["parameters"]}
    assert {"region", "theme", "content_type", "min_influence", "sort", "n", "offset"} <= search
