"""Board keys: one per (score, region, kind, label), whatever the label spells."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.labels import DEFAULT_CONTENT_TYPES, DEFAULT_THEMES, OTHER
from streams.keys import BREAKDOWN_SCORES, GLOBAL_REGION, SEPARATOR, BoardRef, Keys, key_part
from streams.layout import board_id
from streams.readers import board_key

KEYS = Keys()
#: Texts rich in the characters a key layout could trip on.
TEXT = st.lists(st.sampled_from(["a", "B", ":", "%", "3", "A", "ct", "lb", " ", "*"])).map("".join)
KINDS = ("headline", "theme", "ct")


def build(keys: Keys, score: str, region: str, kind: str, label: str) -> str:
    if kind == "headline":
        return keys.board(score, region)
    if kind == "theme":
        return keys.theme_board(score, region, label)
    return keys.content_type_board(score, region, label)


@settings(max_examples=2000, deadline=None)
@given(
    a=st.tuples(st.sampled_from(BREAKDOWN_SCORES), TEXT, st.sampled_from(KINDS), TEXT),
    b=st.tuples(st.sampled_from(BREAKDOWN_SCORES), TEXT, st.sampled_from(KINDS), TEXT),
)
def test_distinct_boards_have_distinct_keys(
    a: tuple[str, str, str, str], b: tuple[str, str, str, str]
) -> None:
    def board(t: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
        return (t[0], t[1], t[2], "" if t[2] == "headline" else t[3])  # a headline has no label

    assert (build(KEYS, *a) == build(KEYS, *b)) == (board(a) == board(b))


@settings(max_examples=500, deadline=None)
@given(text=TEXT)
def test_a_key_part_never_holds_the_separator_and_reads_back(text: str) -> None:
    part = key_part(text)
    assert SEPARATOR not in part
    assert unquote(part) == text


@pytest.mark.parametrize("label", ["video", "ct:video", "ct%3Avideo", "x:ct:video", "%"])
def test_a_theme_can_never_forge_a_content_type_board(label: str) -> None:
    themes = {KEYS.theme_board("overall", GLOBAL_REGION, label)}
    types = {KEYS.content_type_board("overall", GLOBAL_REGION, t) for t in ("video", label)}
    assert not themes & types
    assert KEYS.theme_board("overall", GLOBAL_REGION, "ct:video") == "cs:lb:overall:ALL:ct%3Avideo"


def test_plain_labels_keep_their_documented_keys() -> None:
    # The README's layout, unchanged for every label of the default taxonomy.
    assert KEYS.board("overall", "ID") == "cs:lb:overall:ID"
    assert KEYS.theme_board("influence", "ID", "beauty") == "cs:lb:influence:ID:beauty"
    assert KEYS.content_type_board("overall", "US", "live") == "cs:lb:overall:US:ct:live"
    for label in (*DEFAULT_THEMES, *DEFAULT_CONTENT_TYPES, OTHER, "home decor"):
        assert key_part(label) == label


def test_publisher_and_readers_build_the_same_keys() -> None:
    for label in ("beauty", "ct:video", "50%"):
        theme = board_id("overall", "SG", "theme", label)
        assert KEYS.prefix + theme == board_key(KEYS, region="SG", theme=label)
        ct = board_id("overall", "SG", "ct", label)
        assert KEYS.prefix + ct == board_key(KEYS, region="SG", content_type=label)
    assert board_key(KEYS, theme="ct:video") != board_key(KEYS, content_type="video")


def test_readers_normalise_labels_as_the_worker_does() -> None:
    assert board_key(KEYS, theme=" Beauty ") == "cs:lb:overall:ALL:beauty"
    assert board_key(KEYS, region="US", content_type="LIVE") == "cs:lb:overall:US:ct:live"


def test_readers_name_regions_as_the_worker_files_them() -> None:
    assert board_key(KEYS, region="uk") == board_key(KEYS, region="GB") == "cs:lb:overall:GB"
    assert board_key(KEYS, region=" sg ", theme="Beauty") == "cs:lb:overall:SG:beauty"
    assert board_key(KEYS, region="all") == board_key(KEYS) == "cs:lb:overall:ALL"


def test_a_label_or_region_with_no_board_is_an_error_listing_what_there_is() -> None:
    from scoring.params import DEFAULT_PARAMS
    from streams.readers import ReaderError

    with pytest.raises(ReaderError, match=r"no board for theme 'crypto'; the themes are: .*beauty"):
        board_key(KEYS, theme="crypto", taxonomy=DEFAULT_PARAMS)
    with pytest.raises(ReaderError, match=r"content types are: live, other, photo, short, video"):
        board_key(KEYS, content_type="vlog", taxonomy=DEFAULT_PARAMS)
    with pytest.raises(ReaderError, match=r"region 'GBR' is not ALL or a two-letter code"):
        board_key(KEYS, region="gbr")
    assert board_key(KEYS, theme="Other", taxonomy=DEFAULT_PARAMS) == "cs:lb:overall:ALL:other"


def test_top_says_which_labels_exist_and_exits_2() -> None:
    from click.testing import CliRunner

    from streams.cli import main

    result = CliRunner().invoke(main, ["top", "--theme", "Crypto"])
    assert result.exit_code == 2
    assert "no board for theme 'Crypto'; the themes are:" in result.output


@settings(max_examples=1000, deadline=None)
@given(score=TEXT, region=TEXT, kind=st.sampled_from(KINDS), label=TEXT)
def test_every_board_key_reads_back_as_its_board(
    score: str, region: str, kind: str, label: str
) -> None:
    ref = KEYS.parse_board(build(KEYS, score, region, kind, label))
    assert ref == BoardRef(
        score,
        region,
        theme=label if kind == "theme" else None,
        content_type=label if kind == "ct" else None,
    )
    assert ref is not None and ref.key(KEYS) == build(KEYS, score, region, kind, label)


@pytest.mark.parametrize(
    "key", ["cs:creator:c1", "other:lb:overall:ALL", "cs:lb:overall", "cs:lb:a:b:c:d", "cs:lb:"]
)
def test_what_is_not_a_board_key_is_no_board(key: str) -> None:
    assert KEYS.parse_board(key) is None
