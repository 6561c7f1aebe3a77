"""Weight encodings: ternary (2 bpw, 1.6 bpw, TLMM group-index codes) and per-channel integers."""
