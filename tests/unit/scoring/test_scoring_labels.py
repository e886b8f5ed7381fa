"""The taxonomy: labels are normalised, kept when listed, otherwise filed under `other`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.events import OrderEvent, PostEvent, TagEvent, UnmappedLabel
from scoring.labels import DEFAULT_CONTENT_TYPES, DEFAULT_THEMES, OTHER, is_normal, normalise
from scoring.params import DEFAULT_PARAMS, MAX_TAXONOMY, Params, load_params, params_from_mapping
from scoring.validate import ValidationError, validate

P = DEFAULT_PARAMS
NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def post(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "post_id": "p1", "creator_id": "c1", "region": "ID", "content_type": "video",
        "themes": ["beauty"], "posted_at": NOW - 1000, "views": 10, "likes": 1,
        "comments": 0, "shares": 0,
    }  # fmt: skip
    d.update(over)
    return d


def tag(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "tag_id": "t1", "post_id": "p1", "creator_id": "c1", "product_id": "s1",
        "brand_id": "b1", "theme": "home", "tagged_at": NOW - 1000,
    }  # fmt: skip
    d.update(over)
    return d


def order(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "order_id": "o1", "creator_id": "c1", "product_id": "s1", "brand_id": "b1",
        "theme": "home", "quantity": 1, "amount": "12.5", "currency": "USD",
        "status": "placed", "ordered_at": NOW - 1000,
    }  # fmt: skip
    d.update(over)
    return d


def check(kind: str, payload: object, params: Params = P) -> PostEvent | TagEvent | OrderEvent:
    ev = validate(kind, payload, now_ms=NOW, params=params)  # type: ignore[arg-type]
    assert not isinstance(ev, ValidationError), ev
    return ev


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("beauty", "beauty"),
        ("Beauty", "beauty"),
        ("  BEAUTY  ", "beauty"),
        ("Home   Decor", "home decor"),
        ("home\u3000decor", "home decor"),  # any Unicode whitespace run is one space
        ("ct:Video", "ct:video"),
        ("Ä", "ä"),
    ],
)
def test_normalise(raw: str, normal: str) -> None:
    assert normalise(raw) == normal
    assert is_normal(normal) and normalise(normal) == normal


def test_defaults_list_the_documented_labels() -> None:
    assert P.themes == DEFAULT_THEMES and P.content_types == DEFAULT_CONTENT_TYPES
    assert {"beauty", "fashion", "home", "food"} <= set(P.themes)
    assert {"video", "live", "photo"} <= set(P.content_types)
    # Every content type with its own peer baseline is one the taxonomy keeps.
    assert set(P.peer_baselines) - {"default"} <= set(P.content_types)
    assert all(is_normal(t) for t in (*P.themes, *P.content_types))


def test_listed_labels_are_kept_in_normal_form() -> None:
    ev = check("post", post(content_type=" Video ", themes=["Beauty", "beauty ", "HOME"]))
    assert isinstance(ev, PostEvent)
    assert (ev.content_type, ev.themes, ev.unmapped) == ("video", ("beauty", "home"), ())


def test_other_labels_become_other_and_are_recorded() -> None:
    ev = check(
        "post", post(content_type="Vlog", themes=["beauty", "Crypto", "crypto ", "ct:video"])
    )
    assert isinstance(ev, PostEvent)
    assert ev.content_type == OTHER
    assert ev.themes == ("beauty", OTHER)
    assert ev.unmapped == (
        UnmappedLabel("content_type", "vlog"),
        UnmappedLabel("theme", "crypto"),
        UnmappedLabel("theme", "ct:video"),
    )
    for kind, payload in (
        ("tag", tag(theme="Garden Tools")),
        ("order", order(theme="garden  tools")),
    ):
        ev = check(kind, payload)
        assert isinstance(ev, TagEvent | OrderEvent)
        assert ev.theme == OTHER
        assert ev.unmapped == (UnmappedLabel("theme", "garden tools"),)


def test_other_itself_is_kept_and_not_counted() -> None:
    ev = check("post", post(content_type="Other", themes=["other", "OTHER"]))
    assert isinstance(ev, PostEvent)
    assert (ev.content_type, ev.themes, ev.unmapped) == (OTHER, (OTHER,), ())


def test_both_paths_agree_on_labels() -> None:
    # A Mapping that is not a dict takes the field-by-field path; a dict the usual one.
    from types import MappingProxyType

    for kind, payload in (
        ("post", post(content_type="Vlog", themes=["Crypto", "beauty", "ct:video"])),
        ("post", post(themes=["Crypto"])),
        ("tag", tag(theme="Crypto")),
        ("order", order(theme=" Crypto")),
    ):
        assert check(kind, payload) == check(kind, MappingProxyType(payload))


def test_a_creator_with_many_new_themes_stays_on_few_labels() -> None:
    # The case: 1,000 posts of 16 new themes each. Every post lands on `other`.
    seen: set[str] = set()
    unmapped = 0
    for i in range(1_000):
        themes = [f"fad-{i}-{j}" for j in range(16)]
        ev = check("post", post(post_id=f"p{i}", themes=themes))
        assert isinstance(ev, PostEvent)
        seen.update(ev.themes)
        unmapped += len(ev.unmapped)
    assert seen == {OTHER}
    assert unmapped == 16_000


LABELS = st.text(
    alphabet=st.sampled_from(["a", "B", "c", " ", ":", "%", "é", "E"]), min_size=1,
    max_size=8,
).filter(lambda s: not s.isspace())  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(themes=st.lists(LABELS, max_size=16), taxonomy=st.lists(LABELS, max_size=5))
def test_validated_themes_come_from_the_taxonomy(themes: list[str], taxonomy: list[str]) -> None:
    params = dataclasses.replace(P, themes=tuple(sorted({normalise(t) for t in taxonomy})))
    ev = check("post", post(themes=themes), params)
    assert isinstance(ev, PostEvent)
    normal = {normalise(t) for t in themes}
    kept = normal & params.theme_set
    away = normal - params.theme_set
    assert set(ev.themes) == kept | ({OTHER} if away else set())
    assert list(ev.themes) == sorted(ev.themes)
    assert ev.unmapped == tuple(UnmappedLabel("theme", t) for t in sorted(away))


# --- parameters ------------------------------------------------------------------------------


def test_the_taxonomy_is_set_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "params.toml"
    path.write_text(
        'model_version = "taxonomy-2"\n'
        f"themes = {[*DEFAULT_THEMES, 'home decor']!r}\n"
        'content_types = ["video", "live", "photo", "short", "story"]\n',
        encoding="utf-8",
    )
    params = load_params(path)
    assert params.themes == (*DEFAULT_THEMES, "home decor")
    assert params.content_types == ("video", "live", "photo", "short", "story")
    ev = check("post", post(content_type="Story", themes=["Home  Decor"]), params)
    assert isinstance(ev, PostEvent)
    assert (ev.content_type, ev.themes, ev.unmapped) == ("story", ("home decor",), ())


def test_an_empty_taxonomy_files_everything_under_other() -> None:
    params = params_from_mapping({"themes": []})
    ev = check("tag", tag(theme="home"), params)
    assert isinstance(ev, TagEvent)
    assert (ev.theme, ev.unmapped) == (OTHER, (UnmappedLabel("theme", "home"),))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"themes": "beauty"}, "themes must be a list of strings"),
        ({"themes": ["beauty", 3]}, "themes must be a list of strings"),
        ({"themes": ["Beauty"]}, "themes[0] 'Beauty' is not in normal form"),
        ({"content_types": [" video"]}, "write 'video'"),
        ({"themes": ["home  decor"]}, "write 'home decor'"),
        ({"themes": ["a", "b", "a"]}, "themes[2] 'a' is listed twice"),
        ({"themes": [""]}, "themes[0] must be a non-empty printable string"),
        ({"content_types": ["a\x01b"]}, "content_types[0] must be a non-empty printable string"),
        ({"themes": [f"t{i}" for i in range(MAX_TAXONOMY + 1)]}, "the limit is 1000"),
    ],
)
def test_bad_taxonomies_are_refused_with_a_precise_message(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as err:
        params_from_mapping(data)
    assert message in str(err.value)


def test_a_list_in_code_is_stored_as_a_tuple() -> None:
    params = dataclasses.replace(P, themes=["beauty"])  # type: ignore[arg-type]
    assert params.themes == ("beauty",)
    assert params.theme_set == frozenset({"beauty", OTHER})
