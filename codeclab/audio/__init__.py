"""Audio: file I/O (soundfile), resampling (soxr), loudness, test signals and spectral features.

The bottom layer with `tokens`, `corpora` and `cuda_ext`: it imports no other codeclab package.
"""
