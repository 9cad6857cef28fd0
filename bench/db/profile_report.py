"""bench/db/profile_report.py PRECISION REPORT [MS ROWS]: a scoring backend's perf samples
by what they were doing (bench/db/profile.sh); with the time MS the backend took for
ROWS rows while it was sampled, each group's share as microseconds per row too.

REPORT is `perf report --no-children -g none --sort dso,symbol --stdio`: lines of
"  12.34%  dso  [.] symbol".  Each sample's symbol (or, failing that, its library)
puts it in one group; the groups and the top symbols are printed.
"""
import re
import sys

# (group, dso pattern, symbol pattern): the first that matches wins
GROUPS = [
    ("network: clad's small-map convolution kernels", None,
     r"^(panel_gemm|tap_sum|tapconv_|image_(to|from)_channels_last|(to|from)_channels_last|clad_tapconv|"
     r"layout_(to|from)_cl)"),
    ("network: OpenBLAS (the stem's and the classifier's GEMMs)", r"openblas", None),
    ("network: clad's other layers", None,
     r"^(clad_conv|im2col|col2im|clad_bn|clad_batchnorm|batchnorm|bn_|clad_relu|relu|clad_maxpool|maxpool|"
     r"clad_avgpool|avgpool|clad_linear|linear_|clad_add|net_host|clad_net_|net_|clad_sgemm|sgemm_plain|"
     r"clad_parallel|conv_|affine_|scale_add|elementwise_|clad_pool_|clad_cross_entropy|chunk_images|any_nan|"
     r"pool_)"),
    ("ODIN's other steps (softmax, the input step), calibration", None,
     r"^(clad_odin|odin_|softmax|clad_softmax|clad_model_score|clad_model_|calib|clad_calib|log_softmax|"
     r"cross_entropy)"),
    ("decoding the PNG (libpng, zlib)", r"(libpng|libz\.|libjpeg)", r"^(png_|inflate|adler32|crc32|clad_image_decode)"),
    ("resizing and normalising", None, r"^(clad_image_|image_|resize|bilinear|normalise|to_float|put_row)"),
    ("the extension's per-row glue (argument, cache, memo)", r"clad\.so", None),
    ("PostgreSQL (executor, detoasting, memory contexts)", r"^postgres$", None),
    ("the C library (memcpy, malloc, ...)", r"libc[.-]", None),
    ("the kernel (page faults, scheduling, syscalls)", r"kernel", None),
]

line_re = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)")


def group_of(dso, sym):
    for name, dso_pat, sym_pat in GROUPS:
        if sym_pat and re.search(sym_pat, sym):
            return name
    for name, dso_pat, sym_pat in GROUPS:
        if dso_pat and re.search(dso_pat, dso):
            return name
    return "other"


def main():
    prec, path = sys.argv[1], sys.argv[2]
    rows = []
    for line in open(path, errors="replace"):
        if line.startswith("#"):
            continue
        m = line_re.match(line)
        if m:
            pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
            if kind == "k":
                dso = "[kernel]"
            rows.append((pct, dso, sym))
    if not rows:
        sys.exit("profile_report: no samples in %s" % path)
    total = sum(r[0] for r in rows)
    groups = {}
    for pct, dso, sym in rows:
        g = group_of(dso, sym)
        groups[g] = groups.get(g, 0.0) + pct
    us = None
    if len(sys.argv) > 4:
        us = 1000.0 * float(sys.argv[3]) / int(sys.argv[4])
        print("%s: %.1f rows/s while sampled, %.0f us a row; where the samples went (%d symbols)"
              % (prec, 1e6 / us, us, len(rows)))
    else:
        print("%s: where a scoring backend's samples went (%d symbols)" % (prec, len(rows)))
    for name, _, _ in GROUPS + [("other", None, None)]:
        if name in groups:
            share = groups[name] / total
            print("  %5.1f%%  %s  %s" % (100.0 * share, "%6.0f us" % (share * us) if us else "", name))
    print("  top symbols:")
    for pct, dso, sym in sorted(rows, reverse=True)[:12]:
        print("  %5.1f%%  %-22s %s" % (100.0 * pct / total, dso[:22], sym[:70]))


if __name__ == "__main__":
    main()
