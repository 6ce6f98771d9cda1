"""Dynamic embedding table: growth, optimizer state across growth, frozen vs trainable, novelty, eviction,
save/load, thread safety, encoder init. CPU only, small tables: the whole file runs in a few seconds."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from monovec.embed.dynamic import (
    OOV_ID,
    DynamicEmbedding,
    DynamicEmbeddingConfig,
    grow_optimizer_state,
    project_text_encoder,
)


class FakeClock:
    """Injectable clock: tests move time explicitly instead of sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock | None = None, **kw: object) -> DynamicEmbedding:
    cfg = DynamicEmbeddingConfig(**{"dim": 8, "initial_capacity": 4, **kw})  # type: ignore[arg-type]
    return DynamicEmbedding(cfg, clock=clock or FakeClock())


def test_growth_keeps_rows_ids_and_parameter_identity() -> None:
    table = make()
    param = table.weight
    first = table.lookup(["a", "b", "c"])
    assert first.tolist() == [1, 2, 3] and table.capacity == 4
    before = table.weight.detach()[:4].clone()
    table.lookup([f"t{i}" for i in range(10)])
    assert table.weight is param and table.capacity == 16 and table.reallocations == 2
    assert torch.equal(table.weight.detach()[:4], before)
    assert table.lookup(["a", "b", "c"], add_missing=False).tolist() == [1, 2, 3]
    assert table.lookup(["never"], add_missing=False).tolist() == [OOV_ID] and "never" not in table
    out = table(torch.tensor([[1, 2], [3, 0]]))
    assert out.shape == (2, 2, 8) and torch.equal(out[0, 0], before[1])
    with pytest.raises(IndexError, match=r"\[0, 14\)"):
        table(torch.tensor([14]))


def test_capacity_doubles_so_reallocations_are_logarithmic() -> None:
    table = make(initial_capacity=2, growth_factor=2.0)
    capacities = {table.capacity}
    for i in range(10_000):
        table.add(f"tok{i}")
        capacities.add(table.capacity)
    assert len(table) == 10_000 and table.capacity == 16_384
    assert sorted(capacities) == [2**k for k in range(1, 15)]  # each growth exactly doubles
    assert table.reallocations == math.ceil(math.log2(10_001 / 2)) == 13


def test_adam_state_survives_growth_and_new_rows_start_at_zero() -> None:
    table = make()
    opt = torch.optim.Adam(table.parameters(), lr=0.1)
    table.attach_optimizer(opt)
    ids = table.lookup(["a", "b", "c"])
    table(ids).pow(2).sum().backward()
    opt.step()
    state = opt.state[table.weight]
    m_old, v_old = state["exp_avg"][:4].clone(), state["exp_avg_sq"][:4].clone()
    assert m_old[1:].abs().sum() > 0 and v_old[1:].abs().sum() > 0

    new_ids = table.lookup(["d", "e", "f"])  # crosses capacity 4 -> 8
    state = opt.state[table.weight]
    assert table.capacity == 8 and state["exp_avg"].shape == table.weight.shape
    assert torch.equal(state["exp_avg"][:4], m_old) and torch.equal(state["exp_avg_sq"][:4], v_old)
    assert state["exp_avg"][new_ids].abs().sum() == 0 and state["exp_avg_sq"][new_ids].abs().sum() == 0

    opt.zero_grad()
    table(torch.cat([ids, new_ids])).pow(2).sum().backward()
    opt.step()  # shapes line up: no error, and the new rows now have moments of their own
    assert opt.state[table.weight]["exp_avg"][new_ids].abs().sum() > 0


def test_grow_optimizer_state_helper_for_unattached_optimizers() -> None:
    table = make()
    opt = torch.optim.SGD(table.parameters(), lr=0.1, momentum=0.9)
    table(table.lookup(["a"])).sum().backward()
    opt.step()
    table.lookup([f"t{i}" for i in range(5)])  # grows; optimizer not attached
    assert opt.state[table.weight]["momentum_buffer"].shape[0] == 4
    assert grow_optimizer_state(opt, table.weight) == 1
    assert opt.state[table.weight]["momentum_buffer"].shape == table.weight.shape


def test_trainable_rows_learn_end_to_end_and_frozen_rows_do_not() -> None:
    torch.manual_seed(0)
    for trainable in (True, False):
        table = make(trainable=trainable)
        head = torch.nn.Linear(8, 1)
        model = torch.nn.Sequential(table, head)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        table.attach_optimizer(opt)
        ids = table.lookup(["sweet", "bitter"])
        before = table.weight.detach().clone()
        for _ in range(5):
            opt.zero_grad()
            loss = (model(ids).squeeze(-1) - torch.tensor([1.0, -1.0])).pow(2).mean()
            loss.backward()
            opt.step()
        changed = not torch.equal(table.weight.detach()[ids], before[ids])
        assert table.weight.requires_grad is trainable and changed is trainable
        assert torch.equal(table.weight.detach()[OOV_ID], before[OOV_ID])  # unused rows never move


def test_min_count_shares_oov_until_enough_sightings() -> None:
    table = make(min_count=3)
    assert table.lookup(["rare", "rare"]).tolist() == [OOV_ID, OOV_ID]
    assert table.is_new("rare") and "rare" not in table and table.count("rare") == 2
    assert table.add("rare") == 1 and table.count("rare") == 3
    assert not table.is_new("rare") and table.lookup(["rare"]).tolist() == [1]
    assert table.lookup(["other"]).tolist() == [OOV_ID]


def test_counts_first_seen_and_is_new_with_window() -> None:
    clock = FakeClock(100.0)
    table = make(clock)
    assert table.is_new("cocoa") and table.first_seen("cocoa") is None and table.count("cocoa") == 0
    table.lookup(["cocoa"])
    clock.now = 130.0
    table.lookup(["cocoa", "cocoa"])
    assert table.count("cocoa") == 3 and table.first_seen("cocoa") == 100.0
    assert not table.is_new("cocoa")
    assert table.is_new("cocoa", window=60.0) and not table.is_new("cocoa", window=10.0)


def test_eviction_recycles_ids_with_fresh_rows_and_state() -> None:
    clock = FakeClock(0.0)
    table = make(clock, evict_after=10.0)
    opt = torch.optim.Adam(table.parameters(), lr=0.1)
    table.attach_optimizer(opt)
    ids = table.lookup(["old", "kept"])
    table(ids).sum().backward()
    opt.step()
    clock.now = 8.0
    table.lookup(["kept"], add_missing=False)  # a read counts as use
    clock.now = 15.0
    assert table.evict_stale() == ["old"] and "old" not in table and table.token_of(1) is None
    assert (
        table.weight.detach()[1].abs().sum() == 0 and opt.state[table.weight]["exp_avg"][1].abs().sum() == 0
    )
    assert table.add("fresh") == 1 and table.token_of(1) == "fresh"  # the evicted id is reused
    assert table.weight.detach()[1].abs().sum() > 0
    assert table.add("old") == 3 and not table.is_new("old")  # comes back with a new id, stats kept
    clock.now = 40.0
    assert sorted(table.lookup(["x"], add_missing=True).tolist()) == [1]  # auto-evicts, then reuses id 1
    assert len(table) == 1 and table.num_rows == 4


def test_mean_init_tracks_trained_rows() -> None:
    table = make(init="mean")
    opt = torch.optim.SGD(table.parameters(), lr=1.0)
    table.attach_optimizer(opt)
    ids = table.lookup(["a", "b", "c"])
    w = table.weight.detach()
    assert torch.allclose(w[2], w[1]) and torch.allclose(w[3], w[1])  # b, c start at the mean of {a}, {a, b}
    table(ids).mul(torch.arange(3.0).view(3, 1)).sum().backward()
    opt.step()  # rows move; the cached sum must notice
    expected = table.weight.detach()[1:4].mean(0)
    table.lookup(["d", "e"])  # d grows the table (cache dropped), e reuses it
    assert torch.allclose(table.weight.detach()[4], expected, atol=1e-6)
    assert torch.allclose(table.weight.detach()[5], table.weight.detach()[1:5].mean(0), atol=1e-6)


def test_encoder_init_uses_the_callable() -> None:
    calls: list[str] = []

    def encoder(token: str) -> np.ndarray:
        calls.append(token)
        return np.full(8, float(len(token)), dtype=np.float32)

    table = DynamicEmbedding(DynamicEmbeddingConfig(dim=8, init="encoder"), encoder=encoder)
    tid = table.add("floral")
    assert calls == ["floral"] and torch.equal(table.weight.detach()[tid], torch.full((8,), 6.0))
    table.add("floral")
    assert calls == ["floral"]  # a known token is not re-encoded
    with pytest.raises(ValueError, match="needs encoder"):
        DynamicEmbedding(DynamicEmbeddingConfig(dim=8, init="encoder"))
    bad = DynamicEmbedding(DynamicEmbeddingConfig(dim=4, init="encoder"), encoder=encoder)
    with pytest.raises(ValueError, match="8 floats"):
        bad.add("x")


def test_project_text_encoder_maps_platform_encoder_to_table_width() -> None:
    class Fake:
        name, dim = "fake", 16

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.stack([np.eye(16, dtype=np.float32)[len(t) % 16] for t in texts])

    fn = project_text_encoder(Fake(), dim=8, seed=1)
    assert (
        fn("ab").shape == (8,)
        and np.array_equal(fn("ab"), fn("cd"))
        and not np.array_equal(fn("ab"), fn("a"))
    )
    table = DynamicEmbedding(DynamicEmbeddingConfig(dim=8, init="encoder"), encoder=fn)
    assert torch.allclose(table.weight.detach()[table.add("ab")], torch.from_numpy(fn("ab")))


def test_save_load_roundtrip_keeps_ids_vectors_and_stats(tmp_path: Path) -> None:
    clock = FakeClock(5.0)
    table = make(clock, min_count=2, evict_after=100.0)
    table.lookup(["a", "a", "b", "b", "c", "rare"] + [f"t{i}" for i in range(6) for _ in range(2)])
    clock.now = 500.0
    table.evict_stale(now=50.0)  # nothing stale yet
    table.lookup(["a"])  # auto-evicts everything stale first, then "a" returns on the smallest free id
    assert table.evict_stale() == [] and table.num_rows == 9
    path = table.save(tmp_path / "emb.pt")
    loaded = DynamicEmbedding.load(path, clock=clock)
    assert loaded.vocab() == table.vocab() == {"a": 1}
    assert torch.equal(loaded.weight, table.weight) and loaded.capacity == table.capacity
    assert loaded.count("rare") == 1 and loaded.first_seen("b") == 5.0 and loaded.num_rows == table.num_rows
    assert loaded.lookup(["new", "new"]).tolist() == table.lookup(["new", "new"]).tolist() == [0, 2]
    assert torch.equal(loaded.weight, table.weight)

    # state_dict path: a model holding the table restores it into a fresh (smaller) one
    fresh = make(clock, min_count=2, evict_after=100.0)
    model = torch.nn.Sequential(fresh)
    model.load_state_dict(torch.nn.Sequential(table).state_dict())
    assert fresh.vocab() == table.vocab() and torch.equal(fresh.weight, table.weight)


def test_concurrent_adds_give_one_id_per_token() -> None:
    table = make(initial_capacity=2)
    tokens = [f"w{i}" for i in range(3000)]

    def worker(k: int) -> None:
        rng = np.random.default_rng(k)
        for start in range(0, 3000, 50):
            chunk = [tokens[j] for j in rng.permutation(np.arange(start, min(start + 1500, 3000)))]
            table.lookup(chunk[:40])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    vocab = table.vocab()
    assert len(set(vocab.values())) == len(vocab) == len(table)
    assert sorted(vocab.values()) == list(range(1, len(vocab) + 1))
    assert all(table.token_of(i) == tok for tok, i in vocab.items())
    assert sum(table.count(t) for t in vocab) == 4 * 60 * 40
    assert bool((table.weight.detach()[1 : len(vocab) + 1].abs().sum(1) > 0).all())


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        DynamicEmbeddingConfig(growth_factor=1.0)
    with pytest.raises(ValidationError):
        DynamicEmbeddingConfig(init="zeros")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DynamicEmbeddingConfig(dimm=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="list of tokens"):
        make().lookup("abc")  # type: ignore[arg-type]


def test_vocab_version_moves_only_when_a_token_gains_or_loses_a_row() -> None:
    clock = FakeClock(0.0)
    table = make(clock, min_count=2, evict_after=10.0)
    v0 = table.vocab_version
    table.lookup(["a"])  # below min_count: shares the OOV row, no change
    assert table.vocab_version == v0
    table.lookup(["a", "a"])  # gets its row
    v1 = table.vocab_version
    assert v1 > v0
    table.lookup(["a"], add_missing=False)
    assert table.vocab_version == v1  # plain lookups never bump it
    clock.now = 100.0
    assert table.evict_stale() == ["a"] and table.vocab_version > v1  # eviction does
