"""Typed streaming states of codeclab's modules: what each layer must remember between chunks.

Every state holds one slot per stream of a batch, and `reset(index)` returns that slot to the state of a
fresh stream (zeros: a fresh stream sees the zero padding of a whole pass), leaving the other slots alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


class StreamingUnsupported(ValueError):
    """A codec or module cannot run as a stream; the message says which and why."""


@dataclass
class ConvState:
    """Convolution history: the last inputs [B, C_in, h] that the next outputs still read."""

    history: Tensor

    def reset(self, index: int) -> None:
        with torch.inference_mode():  # states made in inference mode are updated in it
            self.history[index] = 0


@dataclass
class LSTMState:
    """LSTM hidden and cell states [layers, B, C]."""

    hidden: Tensor
    cell: Tensor

    def reset(self, index: int) -> None:
        with torch.inference_mode():
            self.hidden[:, index] = 0
            self.cell[:, index] = 0


@dataclass
class OverlapAddState:
    """Windowed synthesis frames [B, C, n_fft, overlap - 1] whose later parts overlap audio that later
    frames complete. The first `overlap - 1` blocks a stream completes lie before its first sample:
    `drop` counts those still to drop for the whole batch (streams started together), `mute[b]` those
    of a stream restarted in slot b, which are emitted as silence so the batch stays one tensor."""

    frames: Tensor
    drop: int
    mute: list[int] = field(default_factory=list)

    def reset(self, index: int) -> None:
        with torch.inference_mode():
            self.frames[index] = 0
        self.mute[index] = self.frames.shape[-1]


@dataclass
class AttentionState:
    """A transformer layer's memory: its last `window - 1` inputs [B, D, window - 1] and, per stream, how
    many of them are real (a fresh stream has none; the rest are masked as before the item's start)."""

    history: Tensor
    seen: list[int]

    def reset(self, index: int) -> None:
        with torch.inference_mode():
            self.history[index] = 0
        self.seen[index] = 0


@dataclass
class SequenceState:
    """The states of a stack of blocks, in forward order (None for a block without memory)."""

    children: list[StateLike | None]

    def reset(self, index: int) -> None:
        for child in self.children:
            if child is not None:
                child.reset(index)


StateLike = ConvState | LSTMState | OverlapAddState | AttentionState | SequenceState
