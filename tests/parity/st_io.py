"""tests/parity/st_io.py: a small safetensors reader and writer for torch tensors.

The safetensors Python package is not installable here (no PyPI), and the
format is simple: an 8-byte little-endian header length N, N bytes of UTF-8
JSON (padded with spaces so the data start at a multiple of 8), then the raw
little-endian tensor bytes, back to back.  Run with /usr/bin/python3
(Debian's python3-torch).

    save(path, {name: tensor}, metadata=None)
    load(path) -> ({name: tensor}, {key: value})

load() is strict, like clad's reader, so it also checks files clad writes.
"""
import json
import struct

import numpy as np
import torch

# torch dtype -> (safetensors name, little-endian numpy dtype); bfloat16 travels as int16 bits
_DTYPES = {
    torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"),
    torch.float16: ("F16", "<f2"), torch.bfloat16: ("BF16", "<i2"),
    torch.int64: ("I64", "<i8"), torch.int32: ("I32", "<i4"),
    torch.int16: ("I16", "<i2"), torch.int8: ("I8", "i1"),
    torch.uint8: ("U8", "u1"), torch.bool: ("BOOL", "?"),
}
_BY_NAME = {name: (dt, np_dt) for dt, (name, np_dt) in _DTYPES.items()}
_MAX_HEADER = 100 * 1000 * 1000


def _raw(t):
    """The little-endian bytes of t."""
    t = t.detach().contiguous().cpu()
    if t.dtype not in _DTYPES:
        raise TypeError("st_io: unsupported dtype %s" % t.dtype)
    arr = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
    return arr.astype(_DTYPES[t.dtype][1], copy=False).tobytes()


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError("st_io: bad tensor name %r" % (name,))
        raw = _raw(t)
        header[name] = {"dtype": _DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("st_io: duplicate key %r" % k)
        d[k] = v
    return d


def _nonneg_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("st_io: %s: too short" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    if n < 2 or n > _MAX_HEADER or n > len(buf) - 8:
        raise ValueError("st_io: %s: bad header length %d" % (path, n))
    text = buf[8:8 + n].decode("utf-8")
    if not text.startswith("{") or not text.rstrip(" ").endswith("}"):
        raise ValueError("st_io: %s: header must be a JSON object padded with spaces" % path)
    header = json.loads(text, object_pairs_hook=_no_duplicates)
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("st_io: %s: __metadata__ must map strings to strings" % path)
    data = buf[8 + n:]
    out, spans = {}, []
    for name, spec in header.items():
        if not name or not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("st_io: %s: bad entry %r" % (path, name))
        if spec["dtype"] not in _BY_NAME:
            raise ValueError("st_io: %s: %r has unknown dtype %r" % (path, name, spec["dtype"]))
        dt, np_dt = _BY_NAME[spec["dtype"]]
        shape, offs = spec["shape"], spec["data_offsets"]
        if not isinstance(shape, list) or not all(_nonneg_int(d) for d in shape):
            raise ValueError("st_io: %s: %r has a bad shape" % (path, name))
        if not isinstance(offs, list) or len(offs) != 2 or not all(_nonneg_int(o) for o in offs):
            raise ValueError("st_io: %s: %r has bad data_offsets" % (path, name))
        b, e = offs
        numel = 1
        for d in shape:
            numel *= d
        if e < b or e > len(data) or e - b != numel * np.dtype(np_dt).itemsize:
            raise ValueError("st_io: %s: %r: offsets %r do not fit shape %r" % (path, name, offs, shape))
        arr = np.frombuffer(data, dtype=np_dt, count=numel, offset=b) if numel else np.empty(0, np_dt)
        t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
        if dt == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(shape)
        spans.append((b, e, name))
    end = 0
    for b, e, name in sorted(spans):
        if b != end:
            raise ValueError("st_io: %s: %r is not contiguous with the tensor before it" % (path, name))
        end = e
    if end != len(data):
        raise ValueError("st_io: %s: %d trailing bytes" % (path, len(data) - end))
    return out, meta
