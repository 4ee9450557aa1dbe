"""Data: audio I/O and resampling, corpora and manifests, token stores, LLM vocabularies and datasets."""
