"""Images: safe decoding, perceptual hashes, near-duplicate search."""
