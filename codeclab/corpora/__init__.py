"""Corpora: manifests and offline corpus builders (the bottom layer; imports only the standard library,
numpy, soundfile and ffmpeg at run time)."""
