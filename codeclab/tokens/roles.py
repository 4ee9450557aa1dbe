"""The ids that play the roles an LM trainer asks for (pad, bos, eos), shared by every token vocabulary
(`AudioVocab`, `AudioBPE`): the base tokenizer's own id where it has one, else the audio special."""

from __future__ import annotations


class SpecialRoles:
    """Mixed into a vocabulary that has `roles` ({role: base tokenizer id}) and `special(name) -> id`."""

    roles: dict[str, int]

    def special(self, name: str) -> int:
        raise NotImplementedError

    def role(self, name: str) -> int:
        """The id that plays `name` ("pad", "bos", "eos"): the base tokenizer's where `roles` names one,
        else the audio special."""
        return int(self.roles[name]) if name in self.roles else self.special(name)

    @property
    def pad_id(self) -> int:
        return self.role("pad")

    @property
    def bos_id(self) -> int:
        return self.role("bos")

    @property
    def eos_id(self) -> int:
        return self.role("eos")
