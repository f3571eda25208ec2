"""The stored form: exact round trip, smallest encoding, size = bytes of what is stored."""
from __future__ import annotations

import io
import math

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pruners.quantize import int8_scales, int8_values, quantize_int8_
from trainables import compress
from trainables.models import SimpleCNN


def sparse_state(sparsity: float):
    torch.manual_seed(0)
    model = SimpleCNN(3, 10, 32)
    masks = {}
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.dim() > 1:
            masks[name] = torch.rand_like(p) >= sparsity
            p.data.mul_(masks[name])
    return model, masks


def test_round_trip_is_exact_for_every_encoding():
    for sparsity in (0.0, 0.5, 0.97):
        model, masks = sparse_state(sparsity)
        state = model.state_dict()
        decoded = compress.decode(compress.encode(state, masks))
        assert decoded.keys() == state.keys()
        for k in state:
            assert torch.equal(decoded[k], state[k]), (sparsity, k)


def test_sparse_encoding_is_smaller_and_picks_the_cheapest_form():
    model, masks = sparse_state(0.9)
    dense = compress.size_bytes(compress.encode(model.state_dict(), {}))
    sparse_enc = compress.encode(model.state_dict(), masks)
    assert compress.size_bytes(sparse_enc) < 0.25 * dense
    fc1 = model.fc1.weight
    nnz = int(masks["fc1.weight"].sum())
    stored = sum(t.numel() * t.element_size() for k, t in sparse_enc.items() if k.startswith("fc1.weight::"))
    bitmask = (fc1.numel() + 7) // 8 + 4 * nnz + 4 * fc1.dim()
    csr = nnz * (4 + 2) + (fc1.shape[0] + 1) * 4 + 4 * fc1.dim()
    assert stored == min(bitmask, csr, 4 * fc1.numel() + 4 * fc1.dim())


def test_int8_weights_store_one_byte_per_value_and_decode_to_the_quantized_model():
    model, masks = sparse_state(0.5)
    names = list(masks)
    scales = quantize_int8_(model, names)
    state = model.state_dict()
    enc = compress.encode(state, masks, scales)
    assert enc["fc1.weight::values"].dtype == torch.int8
    decoded = compress.decode(enc)
    for k in names:
        assert torch.allclose(decoded[k], state[k], atol=1e-6)


def test_size_bytes_is_what_is_saved_up_to_the_container_overhead():
    model, masks = sparse_state(0.9)
    enc = compress.encode(model.state_dict(), masks)
    buf = io.BytesIO()
    torch.save(enc, buf)
    overhead = buf.tell() - compress.size_bytes(enc)
    # torch.save is a zip: a local header, 64-byte alignment and a central-directory entry per tensor.
    assert 0 < overhead < 400 * len(enc) + 4096


def masked_weight(shape: tuple[int, ...], density: float, int8: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(shape, generator=gen) < density
    weight = torch.randn(shape, generator=gen) * keep
    scales = int8_scales(weight) if int8 else None
    if scales is not None:  # the weight as quantize_int8_ leaves it: int8 values times scales
        weight = int8_values(weight, scales).float() * scales.view(-1, *[1] * (weight.dim() - 1))
    return weight, keep, scales


def expected_weight_bytes(shape: tuple[int, ...], keep: torch.Tensor, int8: bool) -> int:
    """The cheapest of dense, bitmask + values and CSR, plus the stored shape (and scales)."""
    rows, numel, nnz = shape[0], keep.numel(), int(keep.sum())
    value, col = (1 if int8 else 4), (2 if numel // rows <= 32767 else 4)
    dense, bitmask = numel * value, math.ceil(numel / 8) + nnz * value
    csr = nnz * (value + col) + (rows + 1) * 4
    return min(dense, bitmask, csr) + 4 * len(shape) + (4 * rows if int8 else 0)


shapes = st.one_of(st.tuples(st.integers(1, 12), st.integers(1, 600)),
                   st.tuples(st.integers(1, 6), st.integers(1, 4), st.sampled_from([1, 3]), st.sampled_from([1, 3])))
densities = st.sampled_from([0.0, 0.01, 0.05, 0.5, 1.0]) | st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(shapes, densities, st.booleans(), st.integers(0, 2**16))
@example((4, 512), 0.02, False, 0)  # CSR is the smallest
@example((4, 512), 0.3, True, 0)  # bitmask + int8 values
@example((3, 5), 0.9, False, 0)  # dense
def test_encode_decode_round_trip_is_exact_and_size_follows_the_formula(shape, density, int8, seed):
    weight, keep, scales = masked_weight(shape, density, int8, seed)
    bias = torch.randn(shape[0], generator=torch.Generator().manual_seed(seed + 1))
    state = {"layer.weight": weight, "layer.bias": bias}
    encoded = compress.encode(state, {"layer.weight": keep}, {"layer.weight": scales} if int8 else None)
    decoded = compress.decode(encoded)
    assert decoded.keys() == state.keys()
    assert all(torch.equal(decoded[k], state[k]) for k in state)
    assert compress.size_bytes(encoded) == expected_weight_bytes(shape, keep, int8) + 4 * shape[0]
