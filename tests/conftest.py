import os

# transformers wraps its BitNet quantizers in torch.compile; the oracles run them eagerly.
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
