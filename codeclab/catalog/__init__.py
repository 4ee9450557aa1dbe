"""The catalogue: naming and loading codecs, one floor above the model (`codeclab.codecs`).

`registry` (every named codec and its facts), `presets` (codeclab's presets and their bundled `weights/`),
`peers/` (EnCodec, DAC, Mimi, X-Codec through transformers; SNAC; Opus and Codec 2), `ref` (`CodecRef`, the
one type that names a codec), `fingerprint` (what stores, `.clab` headers and reports record of a codec)
and `loading` (`load_codec`, the one dispatcher). Submodules import their dependencies lazily; importing
this package imports nothing else.
"""
