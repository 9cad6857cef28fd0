"""tests/ext/make_bad_models.py: malformed model files for the regress suite.

Usage: make_bad_models.py GOOD_MODEL OUT_DIR

From one good clad model (a safetensors file the trainer wrote), writes one
file per way a model can be malformed (issue 6: each must be refused by
clad_load_model with a clear error and never reach the cache):
  the header length field: 0, 7, 2^64-1, beyond the file, over the 100 MB cap;
  the header text: not UTF-8, not starting with '{', a duplicate key, bad JSON;
  the data offsets: overlapping, with a gap, reversed, out of range;
  a shape whose size times the dtype's is not the byte length, a shape whose
  product overflows, trailing bytes after the data, a tensor missing, a tensor
  of the right size but the wrong shape, a tensor of the wrong dtype, NaN and
  infinite weights, metadata that is not a string map or lacks what clad needs.
Every file is otherwise the good one: the smallest change that breaks it.
"""
import json
import os
import struct
import sys


def split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join_text(text, data):
    """A file from header text (padded with spaces to 8 bytes, as writers do) and data."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def join(header, data):
    return join_text(json.dumps(header, separators=(",", ":")), data)


def tensors(header):
    """Names of the tensors in data order."""
    names = [k for k in header if k != "__metadata__"]
    return sorted(names, key=lambda k: header[k]["data_offsets"][0])


def relayout(header, data, drop=()):
    """The header and data with the tensors in `drop` removed, offsets recomputed."""
    h = {"__metadata__": header["__metadata__"]}
    out = bytearray()
    for k in tensors(header):
        if k in drop:
            continue
        b, e = header[k]["data_offsets"]
        t = dict(header[k])
        t["data_offsets"] = [len(out), len(out) + (e - b)]
        out += data[b:e]
        h[k] = t
    return h, bytes(out)


def main():
    good_path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    good = open(good_path, "rb").read()
    header, data = split(good)
    names = tensors(header)
    # a weight matrix (2 or 4 dims, first dim > 1, not square) to misshape
    mat = next(k for k in names if header[k]["dtype"] == "F32" and len(header[k]["shape"]) >= 2
               and header[k]["shape"][0] > 1 and header[k]["shape"][0] != header[k]["shape"][-1])
    first, second = names[0], names[1]
    files = {}

    def put(name, blob):
        files[name] = blob

    def variant(fn):
        h = json.loads(json.dumps(header))
        d = bytearray(data)
        fn(h, d)
        return join(h, bytes(d))

    hlen = struct.unpack("<Q", good[:8])[0]
    body = good[8:]
    # the length field
    put("len_0", struct.pack("<Q", 0) + body)
    put("len_7", struct.pack("<Q", 7) + body)
    put("len_max", struct.pack("<Q", 2 ** 64 - 1) + body)
    put("len_beyond", struct.pack("<Q", len(good)) + body)
    put("len_over_cap", struct.pack("<Q", 100 * 1000 * 1000 + 8) + body)
    # the header text
    text = good[8:8 + hlen]
    i = text.index(first.encode())
    put("text_not_utf8", good[:8 + i] + b"\xff" + good[8 + i + 1:])
    put("text_not_object", good[:8] + b"[" + good[9:])
    dup = json.dumps(header, separators=(",", ":"))
    entry = json.dumps({second: header[second]}, separators=(",", ":"))[1:-1]
    put("text_duplicate_key", join_text(dup[:-1] + "," + entry + "}", data))
    put("text_bad_json", join_text(dup[:-1] + ",}", data))
    put("text_not_string_map", variant(lambda h, d: h["__metadata__"].update({"clad.K": 4})))
    # offsets
    def overlap(h, d):
        b, e = h[second]["data_offsets"]
        h[second]["data_offsets"] = [b - 4, e - 4]
    put("offsets_overlap", variant(overlap))
    def gap(h, d):
        for k in names[1:]:
            b, e = h[k]["data_offsets"]
            h[k]["data_offsets"] = [b + 4, e + 4]
        d.extend(b"\0" * 4)
    put("offsets_gap", variant(gap))
    def reverse(h, d):
        b, e = h[first]["data_offsets"]
        h[first]["data_offsets"] = [e, b]
    put("offsets_reversed", variant(reverse))
    def beyond(h, d):
        last = names[-1]
        b, e = h[last]["data_offsets"]
        h[last]["data_offsets"] = [b, e + 4]
    put("offsets_out_of_range", variant(beyond))
    # shapes, sizes, dtypes
    put("shape_size_mismatch", variant(lambda h, d: h[mat]["shape"].__setitem__(0, h[mat]["shape"][0] + 1)))
    put("shape_overflow", variant(lambda h, d: h[mat].update(shape=[2 ** 62, 2 ** 62, 16])))
    put("trailing_bytes", good + b"\0" * 8)
    put("tensor_missing", join(*relayout(header, data, drop={mat})))
    put("tensor_misshapen", variant(lambda h, d: h[mat].update(shape=list(reversed(h[mat]["shape"])))))
    put("tensor_wrong_dtype", variant(lambda h, d: h[mat].update(dtype="I32")))
    def poison(value):
        def fn(h, d):
            b = h[mat]["data_offsets"][0]
            d[b + 4:b + 8] = struct.pack("<f", value)
        return fn
    put("weights_nan", variant(poison(float("nan"))))
    put("weights_inf", variant(poison(float("inf"))))
    # what clad itself needs from the metadata
    put("meta_missing_version", variant(lambda h, d: h["__metadata__"].pop("format_version")))
    put("meta_future_version", variant(lambda h, d: h["__metadata__"].update(format_version="999")))
    put("meta_not_clad", variant(lambda h, d: h["__metadata__"].update(format="other")))
    put("meta_bad_clusters", variant(lambda h, d: h["__metadata__"].update(clusters="4x")))
    put("meta_empty", variant(lambda h, d: h.update({"__metadata__": {}})))

    for name, blob in files.items():
        open(os.path.join(out, name + ".safetensors"), "wb").write(blob)
    print("%d malformed models in %s (from %s, %d tensors)" % (len(files), out, good_path, len(names)))


main()
