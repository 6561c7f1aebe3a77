"""`make demo`: compile the bundled model and stream a generation from a fixed prompt.

The bundled model is the trained tiny BitNet in edgestream/data/tiny-bitnet/ when it ships; without
it, a small random BitNet written deterministically through the real checkpoint writer stands in
(its text is noise, its numbers are real).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgestream.cli import main as cli

BUNDLED = Path(__file__).parent / "data" / "tiny-bitnet"
PROMPT = "Once upon a time"


def main() -> int:
    out = Path("out")
    src = BUNDLED
    if not (BUNDLED / "config.json").is_file():
        from edgestream.synth import make_checkpoint

        src = make_checkpoint(out / "random-tiny-bitnet", "tiny", seed=0)
        print(f"(no trained model bundled; using a random tiny BitNet from {src})")
    art = out / "demo.esa"
    rc = cli(["compile", str(src), "-o", str(art), "--progress"])
    if rc:
        return rc
    print(f"prompt: {PROMPT!r}")
    return cli(["run", str(art), "--prompt", PROMPT, "--max-new-tokens", "48", "--verbose"])


if __name__ == "__main__":
    sys.exit(main())
