"""Host runtime: artifact loading, KV cache, prefill/decode, sampling, devices."""
