"""What a launcher (torchrun) tells a process about its place: the one reader of RANK, WORLD_SIZE and
LOCAL_RANK, for tokenize's shards and the trainer's ranks."""

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


def launch_place() -> LaunchPlace:
    """The process's place from torchrun's environment; a malformed variable raises ValueError naming it."""
    values = {}
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        text = os.environ.get(name)
        try:
            values[name] = default if text is None else int(text)
        except ValueError:
            raise ValueError(f"environment variable {name}={text!r} is not an integer") from None
    place = LaunchPlace(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if place.world < 1 or not 0 <= place.rank < place.world or place.local_rank < 0:
        raise ValueError(f"RANK {place.rank} and WORLD_SIZE {place.world} do not describe a process group")
    return place
