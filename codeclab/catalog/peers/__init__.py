"""Peer codecs behind the AudioCodec contract: transformers models (EnCodec, DAC, Mimi, X-Codec) and classic codecs (Opus, Codec 2) through ffmpeg."""
