"""What a launcher (torchrun, or Slurm's srun) tells a process about its place: the one reader of RANK,
WORLD_SIZE and LOCAL_RANK (and Slurm's SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID), for tokenize's
shards and the trainer's ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LaunchPlace:
    """rank / world: this process among all (0 / 1 without a launcher); local_rank: its GPU index."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def launched(self) -> bool:
        return self.world > 1


SLURM_NAMES = {"RANK": "SLURM_PROCID", "WORLD_SIZE": "SLURM_NTASKS", "LOCAL_RANK": "SLURM_LOCALID"}


def launch_place(slurm: bool = False) -> LaunchPlace:
    """The process's place from torchrun's environment; with `slurm`, Slurm's (SLURM_PROCID / SLURM_NTASKS
    / SLURM_LOCALID, as srun sets them) when torchrun's are absent. A malformed variable raises ValueError
    naming it. (The trainer reads torchrun's only: DDP also needs torchrun's rendezvous.)"""
    use_slurm = slurm and "WORLD_SIZE" not in os.environ and "SLURM_NTASKS" in os.environ
    values = {}
    for torch_name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        name = SLURM_NAMES[torch_name] if use_slurm else torch_name
        text = os.environ.get(name)
        try:
            values[torch_name] = default if text is None else int(text)
        except ValueError:
            raise ValueError(f"environment variable {name}={text!r} is not an integer") from None
    place = LaunchPlace(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if place.world < 1 or not 0 <= place.rank < place.world or place.local_rank < 0:
        names = "SLURM_PROCID and SLURM_NTASKS" if use_slurm else "RANK and WORLD_SIZE"
        raise ValueError(f"{names} ({place.rank}, {place.world}) do not describe a process group")
    return place
