import os

# transformers wraps its BitNet quantizers in torch.compile; the oracles run them eagerly.
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Property tests check values, not speed: no per-example deadline (a loaded CI machine must not turn
# a slow first example into a failure). Timing targets live in benchmarks/.
from hypothesis import settings  # noqa: E402

# `make test` (and CI) draws the same examples every run, so a red run reproduces; set
# HYPOTHESIS_PROFILE=explore for fresh random examples when hunting bugs.
settings.register_profile("edgestream", deadline=None, print_blob=True, derandomize=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "edgestream"))
