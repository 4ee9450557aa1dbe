"""A training run's resumable state: what a checkpoint holds beyond the weights, and putting it back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from codeclab._version import __version__
from codeclab.train.checkpoint import load_checkpoint, rng_state, set_rng_state

log = logging.getLogger("codeclab.train")


def training_state(trainer: Any) -> dict[str, Any]:
    """Everything a `Trainer` resumes exactly from: models, optimisers, schedulers, balancer, RNG states
    and the quantizers' training scratch."""
    state: dict[str, Any] = {
        "codec": trainer.codec.state_dict(),
        "opt_g": trainer.opt_g.state_dict(),
        "sched_g": trainer.sched_g.state_dict(),
        "rng": rng_state(),
        "balancer": trainer.balancer.state_dict() if trainer.balancer else None,
        "codeclab_version": __version__,
        # training scratch outside the weights (the quantizers' rows of earlier batches)
        "scratch": {
            name: buf
            for name, buf in trainer.codec.named_buffers()
            if name.endswith(("recent_rows", "rows_since_use"))
        },
    }
    if trainer.disc is not None:
        state.update(
            disc=trainer.disc.state_dict(),
            opt_d=trainer.opt_d.state_dict(),
            sched_d=trainer.sched_d.state_dict(),
        )
    return state


def restore_training_state(trainer: Any, path: Path) -> int:
    """Load the checkpoint at `path` into a built `Trainer`; returns the step to continue from."""
    step, state = load_checkpoint(path)
    trainer.codec.load_state_dict(state["codec"])
    trainer.opt_g.load_state_dict(state["opt_g"])
    trainer.sched_g.load_state_dict(state["sched_g"])
    if trainer.disc is not None and "disc" in state:
        trainer.disc.load_state_dict(state["disc"])
        trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.sched_d.load_state_dict(state["sched_d"])
    elif trainer.disc is not None:
        # a run trained for reconstruction first and resumed with `adversarial` on: the discriminators
        # start fresh (their learning rate warms up from this step)
        log.info("%s has no discriminator state: the discriminators start fresh at step %d", path, step + 1)
    if trainer.balancer is not None and state.get("balancer"):
        trainer.balancer.load_state_dict(state["balancer"])
    buffers = dict(trainer.codec.named_buffers())
    for name, value in (state.get("scratch") or {}).items():
        module_name, _, attr = name.rpartition(".")
        setattr(trainer.codec.get_submodule(module_name), attr, value.to(buffers[name].device))
    set_rng_state(state["rng"])
    log.info("resumed from %s (next step %d)", path, step + 1)
    return step + 1
