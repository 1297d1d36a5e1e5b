#!/usr/bin/env python3
"""Build the GGUF dequantisation fixture: tests/fixtures/gguf/dequant.gguf and dequant.json.

The GGUF holds one small 2-D tensor of every element type Conveyor reads (F32, F16, BF16,
Q8_0, Q4_0, Q4_1, Q4_K, Q6_K). Quantised tensors are random block bytes with sane f16
scales (plus a few edge cases: zero, negative and subnormal scales) rather than quantised
data, because gguf-py cannot quantise the K-types and because random bits reach every
code path of a decoder. F16 and BF16 tensors are random 16-bit patterns, so they include
subnormals, infinities and NaNs.

The JSON holds, per tensor, the f32 bit patterns that gguf-py's reference dequantisation
(gguf.quants.dequantize, which follows ggml-quants.c) produces; the C++ test compares
bits, treating any NaN as equal to any NaN.

Usage: /tmp/fixenv/bin/python scripts/make-gguf-dequant-fixture.py [OUT_DIR]
(needs numpy and gguf; OUT_DIR defaults to tests/fixtures/gguf)
"""
import importlib.metadata
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

rng = np.random.default_rng(20240611)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8)


def sane_scales(n):
    """n f16 scales: mostly small normal values, with zero, negative and subnormal ones."""
    s = rng.normal(0.0, 0.02, size=n).astype(np.float16)
    specials = [0.0, -0.0125, np.float16(2.0 ** -20), -np.float16(2.0 ** -17)]
    for i, v in enumerate(specials[: max(0, n - 1)]):
        s[i + 1] = v
    return s


def blocks(qtype, n_blocks):
    """Random blocks of `qtype` with the f16 scale fields overwritten by sane values."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    if qtype in (T.Q8_0, T.Q4_0):  # f16 d at offset 0
        b[:, 0:2] = f16_bytes(sane_scales(n_blocks)).reshape(n_blocks, 2)
    elif qtype == T.Q4_1:  # f16 d, f16 m
        b[:, 0:2] = f16_bytes(sane_scales(n_blocks)).reshape(n_blocks, 2)
        b[:, 2:4] = f16_bytes(rng.normal(0.0, 0.05, n_blocks)).reshape(n_blocks, 2)
    elif qtype == T.Q4_K:  # f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes
        b[:, 0:2] = f16_bytes(sane_scales(n_blocks)).reshape(n_blocks, 2)
        b[:, 2:4] = f16_bytes(np.abs(rng.normal(0.0, 0.01, n_blocks))).reshape(n_blocks, 2)
    elif qtype == T.Q6_K:  # 128 ql, 64 qh, 16 int8 scales, f16 d at offset 208
        b[:, 208:210] = f16_bytes(sane_scales(n_blocks)).reshape(n_blocks, 2)
    return b


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "fixtures", "gguf")
    os.makedirs(out_dir, exist_ok=True)

    # name -> (type, rows, row length)
    cases = [
        ("f32", T.F32, 2, 64),
        ("f16", T.F16, 2, 128),
        ("bf16", T.BF16, 2, 128),
        ("q8_0", T.Q8_0, 4, 64),
        ("q4_0", T.Q4_0, 4, 64),
        ("q4_1", T.Q4_1, 4, 64),
        ("q4_k", T.Q4_K, 2, 512),
        ("q6_k", T.Q6_K, 2, 512),
    ]
    writer = gguf.GGUFWriter(os.path.join(out_dir, "dequant.gguf"), arch="dequant-fixture")
    expected = []
    for name, qtype, rows, cols in cases:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = rows * cols // block_size
        if qtype == T.F32:
            values = rng.normal(0.0, 1.0, rows * cols).astype(np.float32)
            values[:6] = [np.inf, -np.inf, np.nan, -0.0, 1e-40, -3e-39]  # incl. subnormals
            raw = values.view(np.uint8)
        elif qtype in (T.F16, T.BF16):
            raw = rng.integers(0, 65536, rows * cols, dtype=np.uint16).view(np.uint8)
        else:
            raw = blocks(qtype, n_blocks).reshape(-1)
        raw = raw.reshape(rows, cols // block_size * type_size)
        ref = gguf.quants.dequantize(raw, qtype).astype(np.float32, copy=False)
        assert ref.shape == (rows, cols), (name, ref.shape)
        writer.add_tensor(name, raw, raw_dtype=qtype)
        expected.append({
            "name": name,
            "type": name,
            "shape": [rows, cols],  # outermost first
            "bits": ref.reshape(-1).view(np.uint32).tolist(),
        })
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with open(os.path.join(out_dir, "dequant.json"), "w") as f:
        json.dump({"generator": "scripts/make-gguf-dequant-fixture.py",
                   "reference": f"gguf-py {importlib.metadata.version('gguf')} "
                                "gguf.quants.dequantize",
                   "tensors": expected}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
