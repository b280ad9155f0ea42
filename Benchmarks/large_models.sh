#!/usr/bin/env bash
# Peak memory of zoo on the largest torchvision variants, as the README reports it:
#
#   Benchmarks/large_models.sh [path/to/zoo] [variant ...]     (default: vit_h_14 regnet_y_128gf)
#
# For each variant, in a temporary folder: `zoo init` (the deterministic weights), `zoo convert` to ONNX
# (external data past 2 GiB; verified by running both models), then `zoo run` of the .onnx and of the
# .pth on one image of the variant's input size (zeros). Each step under GNU time: wall seconds and
# peak resident memory, printed next to the weights' size and the ratio. Needs ~3× the weights on disk.
set -euo pipefail
zoo=$(realpath "${1:-.build/release/zoo}")
shift || true
variants=("$@")
((${#variants[@]})) || variants=(vit_h_14 regnet_y_128gf)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for v in "${variants[@]}"; do
  size=$("$zoo" models --json | python3 -c "import json,sys; print(next(x['input_size'] for f in json.load(sys.stdin)['families'] for x in f['variants'] if x['name'] == '$v'))")
  # A .npy of zeros [1, 3, size, size] float32 (format 1.0), with the standard library only.
  python3 - "$size" <<'PY'
import struct, sys
n = int(sys.argv[1])
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, %d, %d), }" % (n, n)
header += " " * (63 - (len(header) + 10) % 64) + "\n"
with open("x.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(bytes(4 * 3 * n * n))
PY
  report() {  # report NAME: the last step's seconds, peak MB and peak / weights
    read -r seconds kb < time.txt
    awk -v n="$1" -v s="$seconds" -v kb="$kb" -v w="$weights" \
      'BEGIN { printf "  %-12s %7.1f s  peak %6.0f MB  %.2f× the weights\n", n, s, kb * 1024 / 1e6, kb * 1024 / w }'
  }
  step() {  # step NAME COMMAND...
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o time.txt "$@" > /dev/null
    report "$name"
  }
  /usr/bin/time -f "%e %M" -o time.txt "$zoo" init "$v" -o "$v.pth" --quiet
  weights=$(stat -c %s "$v.pth")
  echo "$v: weights $((weights / 1000000)) MB ($v.pth), input [1, 3, $size, $size]"
  report init
  step convert "$zoo" convert "$v.pth" "$v.onnx" --quiet
  step "run .onnx" "$zoo" run "$v.onnx" --input x.npy --output y1.npy --quiet
  step "run .pth" "$zoo" run "$v.pth" --input x.npy --output y2.npy --quiet
  rm -f "$v".* x.npy y1.npy y2.npy
done
