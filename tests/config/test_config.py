"""Config round-trip, presets and rejected keys/values."""

import json

import pytest

from tanlib.config import METHODS, Config, parse_set, preset
from tanlib.errors import ConfigError


def test_round_trip_through_json():
    c = preset("tan", "paper", seed=3)
    again = Config.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c and again.image_size == 224 and again.epochs == 70 and again.seed == 3


@pytest.mark.parametrize("method", METHODS)
def test_every_method_preset_is_valid(method):
    c = preset(method, "smoke")
    assert c.method == method and c.image_size == 48


def test_presets_isolate_what_design_says():
    assert preset("ce").lambda_triplet == 0 and not preset("ce").attention
    assert preset("scn").relabel and preset("scn").lambda_rr > 0
    assert preset("tan-euclid").metric == "identity"
    assert preset("tan-nothreshold").threshold_mode == "none"
    tan = preset("tan")
    assert (tan.metric, tan.threshold_mode, tan.threshold, tan.triplet_margin) == ("covariance", "quantile", 0.3, 0.2)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['lerning_rate'\]"):
        Config.from_dict({"lerning_rate": 0.1})


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("lr", -1.0, r"lr=-1.0 is out of range; allowed: > 0"),
        ("lr", 0, r"lr=0.0 is out of range"),
        ("threshold", 1.0, r"threshold=1.0 is out of range; allowed: \[0, 1\)"),
        ("triplet_margin", -0.1, r"triplet_margin=-0.1 is out of range"),
        ("metric", "cosine", r"metric='cosine' is not allowed"),
        ("epochs", "3", r"epochs='3' has type str; expected int"),
        ("deterministic", 1, r"deterministic=1 has type int; expected bool"),
        ("batch_size", 2, r"batch_size=2 cannot form a triplet"),
        ("image_size", 16, r"image_size=16 is out of range"),
    ],
)
def test_invalid_values_are_named(key, value, match):
    with pytest.raises(ConfigError, match=match):
        preset("tan", **{key: value})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="method='tan2'"):
        preset("tan2")
    with pytest.raises(ConfigError, match="scale='huge'"):
        preset("tan", "huge")


def test_parse_set_reads_json_values():
    assert parse_set(["epochs=3", "deterministic=true", "pretrained=/a/b.pth", "lr=1e-4"]) == {
        "epochs": 3,
        "deterministic": True,
        "pretrained": "/a/b.pth",
        "lr": 1e-4,
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_set(["epochs"])


def test_save_and_load(tmp_path):
    c = preset("scn")
    c.save(tmp_path / "c.json")
    assert Config.load(tmp_path / "c.json") == c
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json is not valid JSON"):
        Config.load(tmp_path / "bad.json")


def test_mining_keys_and_warmup_are_validated():
    for key in ("triplet_mining", "mahalanobis_mining"):
        with pytest.raises(ConfigError, match=f"{key}='hardest' is not allowed.*'batch_hard', 'semihard', 'all'"):
            preset("tan", **{key: "hardest"})
    with pytest.raises(ConfigError, match="metric_warmup_epochs=-1 is out of range"):
        preset("tan", metric_warmup_epochs=-1)


def test_trains_embedding_is_the_metric_terms():
    assert [m for m in METHODS if preset(m).trains_embedding] == ["triplet", "tan-euclid", "tan-nothreshold", "tan"]


def test_m_per_class_that_cannot_fill_a_batch_is_named_with_a_fix():
    c = preset("tan", sampler="m_per_class", m_per_class=4, batch_size=64)
    with pytest.raises(
        ConfigError,
        match=r"m_per_class=4 and 7 classes in SynthFER fills at most 28 .* "
        r"batch_size=64; raise m_per_class to at least 10",
    ):
        c.check_classes(7, "SynthFER")
    preset("tan", sampler="m_per_class").check_classes(7)  # the default m_per_class fills a batch of 64


def test_config_differences_is_the_one_same_config_rule(tmp_path, monkeypatch):
    from tanlib.config import RUNTIME_KEYS, config_differences

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    a = preset("tan", "quick", root="data").to_dict()
    b = preset("tan", "quick", root=str(tmp_path / "data"), num_threads=2, progress=False).to_dict()
    assert config_differences(a, b) == {}  # the same folder, relative and absolute; runtime keys ignored
    c = preset("tan", "quick", root="data", lr=0.01).to_dict()
    assert config_differences(a, c) == {"lr": (0.001, 0.01)}
    assert config_differences(a, {**a, "epochs": 20}, RUNTIME_KEYS | {"epochs"}) == {}
    # metric-term keys are inert without a metric term: a ce run written before its scale mined
    # every triplet is the same config (resuming it, reusing it); for tan they count
    ce = preset("ce", "calibrated").to_dict()
    assert config_differences({**ce, "triplet_mining": "semihard", "mahalanobis_mining": "semihard"}, ce) == {}
    # likewise SCN's relabelling epoch, for a method that does not relabel
    att = preset("attention", "calibrated").to_dict()
    assert config_differences({**att, "relabel_epoch": 6}, att) == {}
    scn = preset("scn", "calibrated").to_dict()
    assert config_differences({**scn, "relabel_epoch": 6}, scn) == {"relabel_epoch": (6, 13)}
    tan = preset("tan", "calibrated").to_dict()
    assert config_differences({**tan, "triplet_mining": "semihard"}, tan) == {"triplet_mining": ("semihard", "all")}
    assert config_differences(ce, {**ce, "lambda_triplet": 1.0, "triplet_mining": "semihard"}) == {
        "lambda_triplet": (0.0, 1.0),
        "triplet_mining": ("all", "semihard"),
    }


def test_preset_variant_names_departures_from_the_method_preset():
    from tanlib.config import preset_variant

    assert preset_variant(preset("tan", "quick", seed=3, root="elsewhere").to_dict()) == ""
    assert preset_variant(preset("tan", "quick", lambda_rr=1.0).to_dict()) == "lambda_rr=1.0"
    # metric-term keys are inert without metric terms: ce trained under the old mining default is still ce
    assert preset_variant(preset("ce", "quick", triplet_mining="batch_hard").to_dict()) == ""
    assert (
        preset_variant(preset("triplet", "quick", triplet_mining="batch_hard").to_dict())
        == 'triplet_mining="batch_hard"'
    )


def test_a_config_written_before_a_key_existed_is_the_same_config():
    from tanlib.config import config_differences

    now = preset("tan", "quick").to_dict()
    old = {k: v for k, v in now.items() if k not in ("selection", "test_every_epoch")}
    assert config_differences(old, now) == {}
    assert config_differences(old, {**now, "selection": "last"}) == {"selection": ("best_val", "last")}


def test_a_relabelling_that_would_never_start_is_refused():
    with pytest.raises(ConfigError, match=r"relabel_epoch=13 is after the last epoch \(epochs=12\)"):
        preset("scn", "calibrated", epochs=12)
    assert preset("attention", "calibrated", epochs=12).relabel_epoch == 13  # no relabelling: inert
    assert preset("scn", "calibrated", epochs=12, relabel_epoch=10).relabel_epoch == 10


def test_a_variant_names_its_departure_from_a_preset_taken_otherwise():
    """``preset_variant``'s ``base_overrides``: a run of today's calibrated preset is no variant of
    it, and reads ``ema_decay=0.995`` against the preset before its weight average."""
    from tanlib.config import preset_variant

    today = preset("ce", "calibrated", seed=3).to_dict()
    assert preset_variant(today) == ""
    assert preset_variant(today, ema_decay=0.0) == "ema_decay=0.995"
    assert preset_variant(preset("ce", "calibrated", ema_decay=0.0, epochs=12).to_dict()) == "ema_decay=0.0, epochs=12"
