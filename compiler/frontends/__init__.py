"""Model frontends: each turns a model file into the float IR graph."""
