"""A minimal CLIP trainer: model, tokenizer, loss, checkpoints and a flat training loop.

Depends on torch, webdataset and `wit_pipeline` (shard reading only), never on Beam.
"""
