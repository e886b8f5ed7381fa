"""Parameters: defaults, TOML overrides, precise errors, and the score curves."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from pathlib import Path

import pytest

from scoring.params import (
    COMPONENT_SCORES,
    DEFAULT_PARAMS,
    REQUIRED_CURRENCIES,
    Component,
    Params,
    curve_points,
    load_params,
    params_from_mapping,
)

DEFAULT_TOML = Path(__file__).resolve().parents[3] / "scoring" / "default_params.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_complete() -> None:
    p = DEFAULT_PARAMS
    assert p.model_version and p.fx_version
    assert p.window_days == 28 and p.short_window_days == 7 and p.future_margin_ms == 300_000
    assert set(REQUIRED_CURRENCIES) <= set(p.fx_usd_per_unit)
    assert set(p.overall_weights) == set(COMPONENT_SCORES)
    assert "default" in p.peer_baselines


def test_shipped_toml_equals_the_defaults() -> None:
    assert load_params(DEFAULT_TOML) == DEFAULT_PARAMS


def test_params_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PARAMS.window_days = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        DEFAULT_PARAMS.fx_usd_per_unit["USD"] = Decimal(2)  # type: ignore[index]


def test_toml_overrides_merge_into_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
model_version = "test-2"
window_days = 35
peer_posts_per_week = 5
[fx_usd_per_unit]
KRW = "0.00072"
[overall_weights]
sales = 0.5
[peer_baselines.short]
views_per_post = 12000
engagement_rate = 0.07
conversation_rate = 0.01
[peer_baselines.video]
views_per_post = 9000
[scores.sales.refund_rate]
baseline = 0.08
""",
    )
    p = load_params(path)
    assert p.model_version == "test-2" and p.window_days == 35
    assert p.peer_posts_per_week == 5.0 and isinstance(p.peer_posts_per_week, float)
    assert p.fx_usd_per_unit["KRW"] == Decimal("0.00072")
    assert p.fx_usd_per_unit["USD"] == Decimal(1)  # merged, not replaced
    assert p.overall_weights["sales"] == 0.5 and p.overall_weights["influence"] == 0.22
    assert p.peer("short").views_per_post == 12000.0
    assert p.peer("video").views_per_post == 9000.0
    assert p.peer("video").engagement_rate == DEFAULT_PARAMS.peer("video").engagement_rate
    assert p.peer("unheard-of") == p.peer_baselines["default"]
    refund = p.scores["sales"]["refund_rate"]
    assert refund.baseline == 0.08 and refund.kind == "inverse"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("window_days = ", "not valid TOML"),
        ("colour = 3", "unknown parameter 'colour'"),
        ('window_days = "28"', "window_days must be an integer"),
        ("window_days = true", "window_days must not be a boolean"),
        ("window_days = 0", "window_days must be an integer in [1, 200]"),
        ("short_window_days = 30", "short_window_days must not exceed window_days"),
        ("model_version = 3", "model_version must be a string"),
        ('model_version = " "', "model_version must be a non-empty string"),
        ("share_prior = -1.0", "share_prior must be a positive number"),
        ('max_amount = "lots"', "max_amount must be a decimal number"),
        ("fx_usd_per_unit = 3", "fx_usd_per_unit must be a table"),
        ('[fx_usd_per_unit]\nUSD = "-1"', "fx_usd_per_unit.USD: rate must be a positive decimal"),
        ('[fx_usd_per_unit]\nusd = "1"', "'usd' is not an upper-case ISO 4217 code"),
        ("[fx_usd_per_unit]\nEUR = true", "fx_usd_per_unit.EUR must be a decimal number"),
        ("[overall_weights]\nsales = -1", "overall_weights.sales must be a non-negative number"),
        ("[overall_weights]\nfame = 1", "overall_weights must have exactly the keys"),
        ('[overall_weights]\nsales = "x"', "overall_weights.sales must be a number"),
        ("[peer_baselines.reel]\nviews_per_post = 3", "peer_baselines.reel needs"),
        ("[peer_baselines.video]\nviews = 3", "unknown key peer_baselines.video.views"),
        ("[peer_baselines.video]\nengagement_rate = 0", "engagement_rate must be a positive"),
        ("[scores.fame.reach]\nweight = 1", "unknown score 'scores.fame'"),
        ("[scores.sales.charisma]\nweight = 1", "unknown component 'scores.sales.charisma'"),
        ('[scores.sales.refund_rate]\nkind = "log"', "scores.sales.refund_rate.kind must be one"),
        ("[scores.sales.refund_rate]\nweight = -2", "refund_rate.weight must be a non-negative"),
        ("[scores.diligence.tagged_share]\nbaseline = 1.5", "below 1 for a share"),
        ("[scores.sales.refund_rate]\nsteepness = 0", "steepness must be in (0, 10]"),
        ("[scores.sales.refund_rate]\ncolour = 1", "unknown key scores.sales.refund_rate.colour"),
    ],
)
def test_bad_files_fail_with_a_precise_message(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_params(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read parameters file"):
        load_params(tmp_path / "absent.toml")


def test_all_zero_weights_are_rejected() -> None:
    zero = dict.fromkeys(COMPONENT_SCORES, 0.0)
    with pytest.raises(ValueError, match="must not all be zero"):
        params_from_mapping({"overall_weights": zero})
    comps = {n: {"weight": 0.0} for n in DEFAULT_PARAMS.scores["sales"]}
    with pytest.raises(ValueError, match=r"scores\.sales: component weights must not all be zero"):
        params_from_mapping({"scores": {"sales": comps}})


def test_required_currency_cannot_be_missing() -> None:
    fx = {k: v for k, v in DEFAULT_PARAMS.fx_usd_per_unit.items() if k != "VND"}
    with pytest.raises(ValueError, match="lacks required currencies VND"):
        dataclasses.replace(DEFAULT_PARAMS, fx_usd_per_unit=fx)


def test_fx_scaled_is_exact() -> None:
    scale, rates = DEFAULT_PARAMS.fx_scaled
    for code, rate in DEFAULT_PARAMS.fx_usd_per_unit.items():
        assert Decimal(rates[code]) / Decimal(scale) * 1_000_000 == rate


# --- curves ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ratio", "inverse", "share"])
def test_curve_is_50_at_baseline_and_bounded(kind: str) -> None:
    c = Component(weight=1.0, kind=kind, baseline=0.3, steepness=1.5)  # type: ignore[arg-type]
    assert c.points(0.3) == pytest.approx(50.0)
    for x in (0.0, 1e-300, 1e-9, 0.1, 0.29, 0.31, 0.9, 1.0, 2.0, 1e9, 1e300):
        assert 0.0 <= c.points(x) <= 100.0
        assert math.isfinite(c.points(x))


def test_curves_move_the_right_way() -> None:
    xs = [0.0, 0.01, 0.1, 0.2, 0.5, 0.8, 0.99, 1.0]
    ratio = [curve_points("ratio", 0.2, 1.0, x) for x in xs]
    share = [curve_points("share", 0.2, 1.0, x) for x in xs]
    inverse = [curve_points("inverse", 0.2, 1.0, x) for x in xs]
    assert ratio == sorted(ratio) and share == sorted(share)
    assert inverse == sorted(inverse, reverse=True)
    assert share[0] == 0.0 and share[-1] == 100.0
    assert inverse[0] == 100.0 and ratio[0] == 0.0


def test_steeper_curves_separate_more() -> None:
    gentle = curve_points("ratio", 1.0, 0.5, 3.0)
    steep = curve_points("ratio", 1.0, 2.0, 3.0)
    assert 50 < gentle < steep < 100
    assert curve_points("ratio", 1.0, 1.0, 3.0) == pytest.approx(75.0)


def test_constructing_params_validates() -> None:
    with pytest.raises(ValueError, match="window_days"):
        Params(
            model_version="x",
            window_days=-1,
            fx_version="f",
            fx_usd_per_unit=DEFAULT_PARAMS.fx_usd_per_unit,
            peer_baselines=DEFAULT_PARAMS.peer_baselines,
            overall_weights=DEFAULT_PARAMS.overall_weights,
            scores=DEFAULT_PARAMS.scores,
        )


def test_params_pickle() -> None:
    import pickle

    p = load_params(DEFAULT_TOML)
    assert pickle.loads(pickle.dumps(p)) == p == DEFAULT_PARAMS
