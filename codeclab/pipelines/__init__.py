"""Pipelines: where codecs meet files. Tokenize jobs over corpora, detokenize, `.clab` file encode and
decode. Imports `codecs`, `tokens`, `corpora` and `audio`; nothing below imports it."""
