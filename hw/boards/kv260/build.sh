#!/bin/sh
# Build the KV260 overlay for PYNQ: generate the wrapper, block design and package of the configuration
# (the shipped shell's, or an artifact's own with HW_CONFIG=model.esa; UNITS=7 adds the vector, attention
# and argmax units), run Vivado in batch, and leave
# build/edgestream.bit + build/edgestream.hwh (copy both, side by side, to the board).
# NOT RUN: needs Vivado (2023.2 or later) with the Kria KV260 board files; nobody has run it yet.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
command -v vivado >/dev/null || { echo "vivado is not on PATH (source settings64.sh)" >&2; exit 1; }
mkdir -p "$here/build"
rm -rf "$here/build/gen"
(cd "$root" && python -m edgestream.vivado --board kv260 --out "$here/build/gen" ${HW_CONFIG:+--hw-config "$HW_CONFIG"} \
    --units "${UNITS:-0}")
cd "$here"
vivado -mode batch -nojournal -log build/vivado.log -source build.tcl -tclargs "$here/build/gen" "${JOBS:-8}"
ls -l build/edgestream.bit build/edgestream.hwh
