"""Sticky hash assignment: accuracy of the split, stickiness, minimal movement, validation."""

from __future__ import annotations

import pytest

from monovec.serving.assignment import (
    arm_order,
    assign,
    boundaries,
    bucket,
    choose_unit,
    moved_share,
    normalize_weights,
)

IDS = [f"user-{i}" for i in range(5000)]


def test_bucket_is_stable_in_unit_interval_and_salted() -> None:
    b = bucket("alice", "exp1")
    assert 0.0 <= b < 1.0
    assert b == bucket("alice", "exp1")
    assert b != bucket("alice", "exp2")


def test_split_accuracy_5000_ids_at_90_10() -> None:
    arms = [assign(i, {"control": 90, "treatment": 10}, salt="s") for i in IDS]
    share = arms.count("treatment") / len(arms)
    assert abs(share - 0.10) <= 0.015, share


def test_same_id_gets_same_arm_every_time() -> None:
    weights = {"control": 0.9, "treatment": 0.1}
    for uid in IDS[:50]:
        first = assign(uid, weights, "s")
        assert all(assign(uid, weights, "s") == first for _ in range(100))


def test_weight_change_moves_only_buckets_in_between() -> None:
    old, new = {"control": 0.9, "treatment": 0.1}, {"treatment": 0.2, "control": 0.8}  # order-independent
    moved = {i for i in IDS if assign(i, old, "s") != assign(i, new, "s")}
    expected = {i for i in IDS if 0.8 <= bucket(i, "s") < 0.9}
    assert moved == expected and moved
    assert all(assign(i, new, "s") == "treatment" for i in moved)
    assert moved_share(old, new) == pytest.approx(0.1)
    assert moved_share(old, old) == 0.0


def test_zero_weight_arm_never_chosen() -> None:
    assert {assign(i, {"control": 1.0, "treatment": 0.0}, "s") for i in IDS} == {"control"}
    assert {assign(i, {"control": 0.0, "treatment": 3.0}, "s") for i in IDS} == {"treatment"}


def test_layout_order_and_normalisation() -> None:
    assert arm_order({"zeta": 1, "treatment": 1, "control": 1}) == ["control", "treatment", "zeta"]
    assert normalize_weights({"treatment": 10, "control": 90}) == {"control": 0.9, "treatment": 0.1}
    assert boundaries({"control": 3, "treatment": 1}) == [("control", 0.0, 0.75), ("treatment", 0.75, 1.0)]


@pytest.mark.parametrize(
    "weights, match",
    [
        ({}, "empty"),
        ({"control": -1, "treatment": 2}, "negative"),
        ({"control": 0, "treatment": 0}, "sum"),
        ({"control": float("nan")}, "finite"),
        ({"control": "90"}, "finite"),
        ({"": 1.0}, "non-empty"),
    ],
)
def test_invalid_weights_are_rejected(weights: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        assign("u", weights, "s")


def test_choose_unit_prefers_user_then_session_then_random() -> None:
    assert choose_unit("u1", "s1") == ("u1", "user")
    assert choose_unit(None, "s1") == ("s1", "session")
    assert choose_unit("  ", "s1") == ("s1", "session")
    a, kind = choose_unit(None, None)
    b, _ = choose_unit("", None)
    assert kind == "random" and a != b and len(a) == 32
