#!/bin/sh
# Package the KV260 overlay for PYNQ: regenerate the register package, run Vivado in batch, and
# leave build/edgestream.bit + build/edgestream.hwh (copy both next to each other on the board).
# NOT RUN IN CI: needs Vivado (2023.2 or later) with the Kria KV260 board files.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
command -v vivado >/dev/null || { echo "vivado is not on PATH (source settings64.sh)" >&2; exit 1; }
(cd "$root" && python -m edgestream.regmap)
cd "$here"
mkdir -p build
vivado -mode batch -nojournal -log build/vivado.log -source build.tcl
ls -l build/edgestream.bit build/edgestream.hwh
