"""claims.yaml: the repository's file loads, and a malformed claim is refused naming the
file, the claim and the key."""

from __future__ import annotations

import pytest
import yaml

from tanlib.analysis.claims import load_claims
from tanlib.errors import ConfigError

GOOD = {
    "id": "acc",
    "text": "TAN is more accurate than CE",
    "a": "tan",
    "b": "ce",
    "measure": "accuracy",
    "direction": "greater",
    "levels": [0.0, 0.1],
    "delta": 0.0137,
    "family": "primary",
}


def test_the_repository_claims_load_each_test_once():
    claims = load_claims()
    assert len({c.test for c in claims}) == len(claims)
    assert {c.family for c in claims} == {"primary", "secondary"}
    primary = [c.key for c in claims if c.primary]
    assert primary == ["acc_tan_ce", "acc_tan_scn", "mca_tan_ce", "auc_attention"]
    acc = next(c for c in claims if c.key == "acc_tan_scn")
    assert acc.delta == pytest.approx(0.0137) and acc.direction == +1 and acc.levels == (0.0, 0.1, 0.3)


def _write(tmp_path, *entries):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": list(entries)}))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        ({"a": "tan-xl"}, r"claim 'acc', key 'a': 'tan-xl' is not a method"),
        ({"b": "nobody"}, r"claim 'acc', key 'b': 'nobody' must be a method"),
        ({"measure": "f1"}, r"claim 'acc', key 'measure': 'f1'; choose one of"),
        ({"direction": "up"}, r"key 'direction': 'up'; choose greater or less"),
        ({"levels": [0.1, 1.5]}, r"key 'levels'"),
        ({"delta": 1.37}, r"key 'delta': 1.37: accuracies are fractions"),
        ({"delta": -0.01}, r"key 'delta'"),
        ({"family": "main"}, r"key 'family': 'main'; choose primary or secondary"),
        ({"extra": 1}, r"key 'extra': unknown key"),
        ({"b": "difficulty"}, r"key 'b': 'difficulty' is a baseline of the measure noisy_auc only"),
    ],
)
def test_a_malformed_claim_names_the_file_the_claim_and_the_key(tmp_path, change, message):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ConfigError, match=message) as info:
        load_claims(path)
    assert str(path) in str(info.value)


def test_a_missing_key_a_duplicate_id_and_a_duplicate_test_are_refused(tmp_path):
    missing = {k: v for k, v in GOOD.items() if k != "delta"}
    with pytest.raises(ConfigError, match=r"claim 'acc', key 'delta': missing"):
        load_claims(_write(tmp_path, missing))
    with pytest.raises(ConfigError, match=r"claim 'acc', key 'id': duplicates claim 1"):
        load_claims(_write(tmp_path, GOOD, GOOD))
    same_test = {**GOOD, "id": "again", "text": "the triplet terms help", "family": "secondary"}
    with pytest.raises(ConfigError, match=r"claim 'again', key 'b': tan - ce of accuracy is already claim 'acc'"):
        load_claims(_write(tmp_path, GOOD, same_test))
    reversed_test = {**GOOD, "id": "flip", "a": GOOD["b"], "b": GOOD["a"], "direction": "less"}  # ce - tan: one test
    with pytest.raises(ConfigError, match=r"claim 'flip', key 'b': .* is already claim 'acc'"):
        load_claims(_write(tmp_path, GOOD, reversed_test))
    with pytest.raises(ConfigError, match="the claims file does not exist"):
        load_claims(tmp_path / "none.yaml")


def test_the_design_is_read_from_the_claims_file_and_checked(tmp_path):
    from tanlib.analysis.claims import load_design
    from tanlib.analysis.sequential import SequentialDesign

    assert load_design().looks() == [3, 8, 13, 18, 20]  # the repository's pre-registered looks
    path = _write(tmp_path, GOOD)
    assert load_design(path) == SequentialDesign()  # none given: the defaults
    for design, looks in (({"max_seeds": 10}, [3, 8, 10]), ({"first": 2, "batch": 1, "max_seeds": 3}, [2, 3])):
        path.write_text(yaml.safe_dump({"design": design, "claims": [GOOD]}))
        assert load_design(path).looks() == looks and len(load_claims(path)) == 1
    for design, message in (
        ({"first": 3, "max_seeds": 2}, "key 'design': a sequential design needs"),
        ({"first": 1}, "key 'design': a sequential design needs"),
        ({"first": 2.5}, "key 'design.first': 2.5 must be a whole number"),
        ({"looks": [3, 8]}, "key 'design': expected a mapping of first, batch, max_seeds"),
        ([3, 8], "key 'design': expected a mapping"),
    ):
        path.write_text(yaml.safe_dump({"design": design, "claims": [GOOD]}))
        with pytest.raises(ConfigError, match=message) as err:
            load_design(path)
        assert str(path) in str(err.value)
