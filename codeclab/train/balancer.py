"""EnCodec's loss balancer: each loss gets a share of the gradient on the model output, whatever its scale.

Paper: EnCodec, https://arxiv.org/abs/2210.13438, section 3.4. For losses l_i on the output y, with weights
w_i, the gradient sent into the model is

    sum_i  (w_i / sum_j w_j) * R * g_i / <||g_i||>,   g_i = d l_i / d y,

where <||g_i||> is an exponential moving average of the per-item gradient norm (averaged over ranks under
DDP) and R the reference norm. The weights then say what fraction of the gradient each loss owns.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


class Balancer:
    def __init__(
        self,
        weights: dict[str, float],
        reference_norm: float = 1.0,
        ema_decay: float = 0.999,
        eps: float = 1e-12,
    ) -> None:
        if not weights or any(w < 0 for w in weights.values()):
            raise ValueError("balancer weights must be a non-empty dict of non-negative numbers")
        self.weights = dict(weights)
        self.reference_norm, self.decay, self.eps = reference_norm, ema_decay, eps
        self.norm_sum: dict[str, float] = {}
        self.norm_count: dict[str, float] = {}

    def _average(self, name: str, value: float) -> float:
        self.norm_sum[name] = self.norm_sum.get(name, 0.0) * self.decay + value
        self.norm_count[name] = self.norm_count.get(name, 0.0) * self.decay + 1.0
        return self.norm_sum[name] / self.norm_count[name]

    def combined_gradient(self, losses: dict[str, Tensor], output: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The balanced gradient on `output` (not yet applied) and each loss's gradient norm."""
        grads, norms = {}, {}
        for name, loss in losses.items():
            if self.weights.get(name, 0.0) == 0.0:
                continue
            (grad,) = torch.autograd.grad(loss, [output], retain_graph=True)
            norm = grad.norm(dim=tuple(range(1, grad.ndim))).mean()
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(norm)
                norm = norm / dist.get_world_size()
            grads[name] = grad
            norms[name] = float(norm)
        total_weight = sum(self.weights[n] for n in grads) or 1.0
        combined = torch.zeros_like(output)
        for name, grad in grads.items():
            average = self._average(name, norms[name])
            combined = (
                combined
                + self.weights[name] / total_weight * self.reference_norm / (average + self.eps) * grad
            )
        return combined, norms

    def backward(self, losses: dict[str, Tensor], output: Tensor) -> dict[str, float]:
        """Backpropagate the balanced gradient of `losses` through `output`; returns the gradient norms."""
        combined, norms = self.combined_gradient(losses, output)
        output.backward(combined)
        return norms

    def state_dict(self) -> dict:
        return {"norm_sum": dict(self.norm_sum), "norm_count": dict(self.norm_count)}

    def load_state_dict(self, state: dict) -> None:
        self.norm_sum = {k: float(v) for k, v in state.get("norm_sum", {}).items()}
        self.norm_count = {k: float(v) for k, v in state.get("norm_count", {}).items()}
