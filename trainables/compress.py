"""The stored form of a pruned model, and therefore its size.

`encode` turns a state_dict into a dict of tensors in which every masked weight is stored in
the smallest of: dense, bitmask + nonzero values, or CSR (row pointers + column indices +
values); int8-quantized weights store int8 values plus one fp32 scale per output channel.
`size_bytes` is the sum of the encoded tensors' bytes, so the reported size and the artifact
are the same thing. `decode` inverts `encode` exactly.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from pruners.quantize import int8_values

SEP = "::"


def _bitmask(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(mask.flatten().numpy().astype(np.uint8)))


def _unbitmask(packed: torch.Tensor, numel: int) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(packed.numpy())[:numel].astype(bool))


def _encode_sparse(name: str, values2d: torch.Tensor, keep: torch.Tensor, shape) -> dict[str, torch.Tensor]:
    """Pick the smaller of bitmask and CSR for a 2-D view (rows = output channels)."""
    rows, cols = values2d.shape
    nnz = int(keep.sum())
    vbytes = values2d.element_size()
    col_dtype = torch.int16 if cols <= 32767 else torch.int32
    bitmask_bytes = (keep.numel() + 7) // 8 + nnz * vbytes
    csr_bytes = nnz * (vbytes + torch.empty(0, dtype=col_dtype).element_size()) + (rows + 1) * 4
    dense_bytes = keep.numel() * vbytes
    out = {f"{name}{SEP}shape": torch.tensor(list(shape), dtype=torch.int32)}
    if dense_bytes <= min(bitmask_bytes, csr_bytes):
        out[f"{name}{SEP}dense"] = values2d.reshape(shape).clone()
    elif bitmask_bytes <= csr_bytes:
        out[f"{name}{SEP}bitmask"] = _bitmask(keep)
        out[f"{name}{SEP}values"] = values2d[keep].clone()
    else:
        crow = torch.zeros(rows + 1, dtype=torch.int32)
        crow[1:] = keep.sum(1).cumsum(0)
        out[f"{name}{SEP}crow"] = crow
        out[f"{name}{SEP}col"] = keep.nonzero()[:, 1].to(col_dtype)
        out[f"{name}{SEP}values"] = values2d[keep].clone()
    return out


def encode(state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
           int8_scales: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    int8_scales = int8_scales or {}
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if name not in masks and name not in int8_scales:
            out[name] = tensor.clone()
            continue
        values2d = tensor.reshape(tensor.shape[0], -1)
        if name in int8_scales:
            values2d = int8_values(tensor, int8_scales[name].float()).reshape(values2d.shape)
            out[f"{name}{SEP}scale"] = int8_scales[name].float().clone()
        keep = masks[name].reshape(values2d.shape).cpu() if name in masks else torch.ones_like(values2d, dtype=torch.bool)
        out.update(_encode_sparse(name, values2d, keep, tensor.shape))
    return out


def decode(encoded: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    names = dict.fromkeys(k.split(SEP)[0] for k in encoded)
    state = {}
    for name in names:
        if name in encoded:
            state[name] = encoded[name]
            continue
        shape = tuple(encoded[f"{name}{SEP}shape"].tolist())
        rows = shape[0]
        numel = int(np.prod(shape))
        if f"{name}{SEP}dense" in encoded:
            values = encoded[f"{name}{SEP}dense"].reshape(rows, -1)
        else:
            dtype = encoded[f"{name}{SEP}values"].dtype
            values = torch.zeros(rows, numel // rows, dtype=dtype)
            if f"{name}{SEP}bitmask" in encoded:
                keep = _unbitmask(encoded[f"{name}{SEP}bitmask"], numel).view(rows, -1)
            else:
                crow = encoded[f"{name}{SEP}crow"].long()
                row_idx = torch.repeat_interleave(torch.arange(rows), crow[1:] - crow[:-1])
                keep = torch.zeros(rows, numel // rows, dtype=torch.bool)
                keep[row_idx, encoded[f"{name}{SEP}col"].long()] = True
            values[keep] = encoded[f"{name}{SEP}values"]
        if f"{name}{SEP}scale" in encoded:
            values = values.float() * encoded[f"{name}{SEP}scale"].reshape(-1, 1)
        state[name] = values.reshape(shape)
    return state


def size_bytes(encoded: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in encoded.values())
