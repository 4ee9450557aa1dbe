"""Shape-invariant numerics for encoding.

oneDNN (mkldnn) picks convolution algorithms by tensor shape, so on the CPU the same item gives slightly
different activations in a batch of 1 and in a padded batch of 8 (we measured differences up to 3e-4),
which can flip a nearest-code choice. PyTorch's native CPU convolution computes each output element the
same way whatever the batch size or length, once every output is at least about a dozen steps long (thin
matrices go to other BLAS kernels). Encoding therefore runs with oneDNN off (the encoder took 1.6x as
long for two 10 s clips on 2 cores, measured 2026-11-29) and pads every item to at least `MIN_FRAMES`
frames. NNPACK is off too: PyTorch hands batches of 16 or more items to it, which rounds differently
from the native path (measured: latents up to 6e-6 from a single item's) and ran 3x slower on 2 cores. (The codebook search needs no such care: it returns
the exact argmin on every backend.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

MIN_FRAMES = 32


@contextlib.contextmanager
def exact_numerics(device: torch.device) -> Iterator[None]:
    """Inside: convolutions whose per-item results do not depend on the batch shape (CPU)."""
    if device.type == "cpu":
        # Only the `enabled` flag: the other flags keep their values (and their warnings stay quiet).
        with (
            torch.backends.mkldnn.flags(
                enabled=False, deterministic=None, allow_tf32=None, fp32_precision=None
            ),
            torch.backends.nnpack.flags(enabled=False),
        ):
            yield
    else:
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
            yield
