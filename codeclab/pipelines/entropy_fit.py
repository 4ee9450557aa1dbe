"""Fit a codec's entropy model on a token store of its codes and ship it beside its weights.

    record = fit_entropy_model("tok-train", "weights-dir", heldout="tok-heldout")

The model (`codeclab.tokens.entropy.EntropyModel`: per-codebook code counts, smoothed) is written as
`entropy.safetensors` in the weights directory and recorded in its config.json with its sha256, what it
was fitted on, and the real range-coded rate on the held-out store at every n_q (packets of 100 ms, as
`codeclab encode` writes them): what `codeclab info` shows as the expected entropy-coded bitrate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeclab._progress import progress_task
from codeclab.catalog.fingerprint import weights_sha256
from codeclab.catalog.loading import load_pretrained  # noqa: F401 (re-exported)
from codeclab.codecs.base import AudioCodec
from codeclab.codecs.pretrained import record_entropy_model  # noqa: F401 (re-exported)
from codeclab.tokens.clab import bits_per_code
from codeclab.tokens.clab_packets import DEFAULT_PACKET_FRAMES, range_coded_bytes
from codeclab.tokens.entropy import EntropyModel
from codeclab.tokens.store import TokenStore


def _store_of(path: str | Path, codec: AudioCodec, what: str) -> TokenStore:
    """A token store made by exactly this codec (its tensors' sha256), with all its codebooks."""
    store = TokenStore(path)
    recorded = (store.metadata.get("codec") or {}).get("weights_sha256")
    if recorded != weights_sha256(codec):
        raise ValueError(
            f"{path}: the {what} store's codes were made by other weights (sha256 {recorded}, these are "
            f"{weights_sha256(codec)}); tokenize with the codec whose model you fit"
        )
    if store.n_q != codec.num_codebooks or store.codebook_size != codec.codebook_size:
        raise ValueError(f"{path}: the {what} store must hold all {codec.num_codebooks} codebooks")
    if not store.ids():
        raise ValueError(f"{path}: the {what} store has no items")
    return store


def heldout_rates(
    model: EntropyModel, store: TokenStore, packet_frames: int = DEFAULT_PACKET_FRAMES
) -> dict[str, Any]:
    """Range-coded payload kbps of every item of `store` at n_q = 1..model.n_q (total bytes over total
    seconds), beside the nominal kbps."""
    frame_rate = store.frame_rate
    coded = [0] * model.n_q
    frames = 0
    with progress_task(f"range coding {Path(store.path).name}", len(store), "items") as advance:
        for record in store:
            codes = record.codes.astype("int64")
            frames += codes.shape[1]
            for n_q in range(1, model.n_q + 1):
                coded[n_q - 1] += range_coded_bytes(model, codes[:n_q], packet_frames)
            advance()
    seconds = frames / frame_rate
    bits = bits_per_code(model.codebook_size)
    return {
        "store": Path(store.path).name,
        "items": len(store),
        "seconds": round(seconds, 1),
        "packet_frames": packet_frames,
        "kbps": {str(n): round(coded[n - 1] * 8 / seconds / 1000, 3) for n in range(1, model.n_q + 1)},
        "nominal_kbps": {str(n): round(n * bits * frame_rate / 1000, 3) for n in range(1, model.n_q + 1)},
    }


def fit_entropy_model(
    store_path: str | Path, weights_dir: str | Path, heldout: str | Path | None = None
) -> dict[str, Any]:
    """Fit the model on every item of `store_path` (codes of the codec in `weights_dir`), measure it on
    `heldout` (another store of the same codec, other speakers), write it beside the weights and record
    it in config.json. Returns the record (with the model's sha256 and file)."""
    codec = load_pretrained(weights_dir)
    store = _store_of(store_path, codec, "training")
    with progress_task(f"counting codes of {Path(store_path).name}", len(store), "items") as advance:

        def items():
            for record in store:
                yield record.codes
                advance()

        model = EntropyModel.fit(items(), codec.codebook_size)
    record: dict[str, Any] = {
        "fitted_on": {
            "store": Path(store_path).name,
            "items": len(store),
            "frames": int(model.counts[0].sum()),
        },
        "smoothing": "count + 1/2",
    }
    if heldout is not None:
        record["heldout"] = heldout_rates(model, _store_of(heldout, codec, "held-out"))
    return record_entropy_model(weights_dir, model, record)
