"""Source-filter decoder: frame-rate ConvNeXt blocks (as `istft`) predict, per 5 ms sub-frame and
frequency bin, the gains that shape a harmonic excitation built from F0 and a noise excitation; an
inverse STFT at a 5 ms hop turns the shaped spectra into audio (NSF, https://arxiv.org/abs/1810.11946;
DDSP, https://arxiv.org/abs/2001.04643).

    spectrum[s, k] = exp(harmonic_gain[s, k]) * E_h[s, k] + exp(noise_gain[s, k]) * E_n[s, k]

E_h is the short-time spectrum of the F0-driven harmonic excitation (`excitation.Excitation`: a phase
accumulator, so the phase is right by construction and continuous across chunks), E_n a fixed noise. Per
bin gains of both give a harmonic-to-noise mix per band. F0 arrives as pitch codes per frame
(`pitch.PitchConfig`): from the codes (mode "sent") or from the decoder's own prediction (mode
"predicted", a classifier over the pitch codes on the ConvNeXt features).

Framing: `sub_frames` sub-frames per code frame, synthesis n_fft = `overlap` x the sub-frame hop (320 /
80 at 16 kHz); a sample is complete once the `overlap - 1` sub-frames after its own are in, so the
lookahead is (overlap - 1) / sub_frames code frames (15 ms). The harmonic phase depends on all earlier
F0, so the decoder's context is unbounded: long items are decoded as a stream (`CodecStream`).

`head="complex"` is the same framing without an excitation: per sub-frame and bin a log magnitude and a
phase from two linear outputs (atan2, APNet's parallel phase, https://arxiv.org/abs/2305.07952); it takes
no pitch, and serves as the control that separates the framing's gain from the excitation's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from codeclab._checks import check_bounds, check_types
from codeclab.codecs.modules.conv import Conv1d, mask_tail
from codeclab.codecs.modules.excitation import Excitation, ExcitationState
from codeclab.codecs.modules.istft import ChannelNorm, ConvNeXtBlock
from codeclab.codecs.modules.overlap_add import OverlapAdd
from codeclab.codecs.modules.pitch import PitchConfig, codes_to_f0, pitch_features
from codeclab.codecs.modules.state import SequenceState

MAX_LOG_GAIN = 6.0  # gains are exp(min(log gain, this)): a bound on what an untrained head can emit


@dataclass
class SourceFilterDecoderConfig:
    """channels: audio channels (1). dimension: latent size D. hop: samples per code frame. width, blocks,
    kernel_size, expansion: the ConvNeXt stack (as `ISTFTDecoderConfig`). sub_frames: synthesis frames per
    code frame. overlap: synthesis n_fft / synthesis hop. sample_rate: for the excitation's frequencies.
    causal: causal convolutions (the synthesis is causal whatever this says)."""

    channels: int = 1
    dimension: int = 128
    hop: int = 320
    width: int = 384
    blocks: int = 8
    kernel_size: int = 7
    expansion: int = 3
    sub_frames: int = 4
    overlap: int = 4
    sample_rate: int = 16000
    causal: bool = True
    head: str = "source_filter"

    def __post_init__(self) -> None:
        check_types(self)
        if self.head not in ("source_filter", "complex"):
            raise ValueError(f"head must be 'source_filter' or 'complex', got {self.head!r}")
        check_bounds(
            self,
            {
                "channels": (1, 1),
                "dimension": (1, 16384),
                "hop": (2, 8192),
                "width": (1, 8192),
                "blocks": (1, 128),
                "kernel_size": (1, 255),
                "expansion": (1, 16),
                "sub_frames": (1, 64),
                "overlap": (2, 16),
                "sample_rate": (1000, 768000),
            },
        )
        if self.hop % self.sub_frames or (self.hop // self.sub_frames) % 2:
            raise ValueError(
                f"hop {self.hop} must split into {self.sub_frames} sub-frames of an even number of samples"
            )

    @property
    def hop_length(self) -> int:
        return self.hop

    @property
    def synthesis_hop(self) -> int:
        return self.hop // self.sub_frames

    @property
    def n_fft(self) -> int:
        return self.synthesis_hop * self.overlap


class SourceFilterDecoder(nn.Module):
    """latent [B, D, F] and pitch codes [B, F] -> wav [B, 1, F * hop]."""

    def __init__(self, cfg: SourceFilterDecoderConfig, pitch: PitchConfig | None) -> None:
        super().__init__()
        if (pitch is None) != (cfg.head == "complex"):
            raise ValueError("a source-filter head needs a pitch config; the complex head takes none")
        self.config, self.pitch = cfg, pitch
        self.hop_length = cfg.hop
        self.embed = Conv1d(cfg.dimension, cfg.width, cfg.kernel_size, causal=cfg.causal, norm=False)
        self.pitch_embed = nn.Conv1d(2, cfg.width, 1) if pitch is not None and pitch.sent else None
        self.norm_in = ChannelNorm(cfg.width)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.width, cfg.kernel_size, cfg.expansion, cfg.causal) for _ in range(cfg.blocks)
        )
        self.norm_out = ChannelNorm(cfg.width)
        self.bins = cfg.n_fft // 2 + 1
        self.outputs = 2 if pitch is not None else 3
        self.head = nn.Conv1d(cfg.width, self.outputs * cfg.sub_frames * self.bins, 1)
        self.pitch_head = (
            nn.Conv1d(cfg.width, pitch.levels, 1) if pitch is not None and not pitch.sent else None
        )
        self.excitation = Excitation(cfg.sample_rate, cfg.hop, cfg.synthesis_hop, cfg.overlap)
        self.synthesis = OverlapAdd(cfg.synthesis_hop, cfg.overlap)
        with torch.no_grad():  # start quiet: gains (or magnitudes) of about e^-3
            self.head.bias.view(self.outputs, -1)[:2].fill_(-3.0)

    def context_frames(self) -> tuple[int, int] | None:
        """None: the harmonic phase carries all earlier F0 (decode long items as a stream)."""
        return None

    def lookahead_frames(self) -> float:
        """Code frames after a frame that its last samples wait for: (overlap - 1) sub-frames."""
        return (self.config.overlap - 1) / self.config.sub_frames

    # -- the pieces ----------------------------------------------------------------------------------
    def _trunk(self, x: Tensor, pitch: Tensor | None) -> Tensor:
        """Embedded latent [B, width, F] (+ pitch codes [B, F] in "sent" mode) -> input of the blocks."""
        if self.pitch_embed is not None:
            if pitch is None:
                raise ValueError("this decoder reads F0 from the codes: pass the pitch codes")
            x = x + self.pitch_embed(pitch_features(pitch, self.pitch).to(x.dtype))
        return self.norm_in(x)

    def _outputs(self, x: Tensor) -> Tensor:
        """Block output [B, width, F] -> head outputs [B, outputs, bins, F * sub_frames]."""
        out = self.head(self.norm_out(x)).float()
        b, _, frames = out.shape
        out = out.view(b, self.outputs, self.config.sub_frames, self.bins, frames).permute(0, 1, 3, 4, 2)
        return out.reshape(b, self.outputs, self.bins, frames * self.config.sub_frames)

    def pitch_logits(self, x: Tensor) -> Tensor | None:
        """Block output [B, width, F] -> pitch-code logits [B, levels, F] ("predicted" mode), else None."""
        return self.pitch_head(self.norm_out(x)).float() if self.pitch_head is not None else None

    def _shaped(self, x: Tensor, f0_codes: Tensor | None, state: ExcitationState) -> Tensor:
        """Block output and the pitch codes driving the excitation -> spectra [B, 1, bins, S]."""
        out = self._outputs(x)
        if self.pitch is None:  # complex head: log magnitude, and the phase of (real, imaginary) outputs
            magnitude = torch.exp(out[:, 0].clamp(max=MAX_LOG_GAIN))
            return torch.polar(magnitude, torch.atan2(out[:, 2], out[:, 1]))[:, None]
        gains = torch.exp(out.clamp(max=MAX_LOG_GAIN))
        harmonic, noise = self.excitation.step(codes_to_f0(f0_codes, self.pitch), state)
        return (gains[:, 0] * harmonic + gains[:, 1] * noise)[:, None]

    # -- whole items ---------------------------------------------------------------------------------
    def synthesize(
        self, z: Tensor, lengths: Tensor | None = None, pitch: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """latent [B, D, F], valid frames [B], pitch codes [B, F] ("sent": required; "predicted": the
        excitation's F0 in training, else the prediction) -> (wav [B, 1, F * hop], pitch logits or None)."""
        x = self._trunk(self.embed(mask_tail(z, lengths)), pitch)
        for block in self.blocks:
            x = block(x)
        logits = self.pitch_logits(x)
        if pitch is None and self.pitch is not None:
            if logits is None:
                raise ValueError("this decoder reads F0 from the codes: pass the pitch codes")
            pitch = logits.argmax(1)
        frames = z.shape[-1]
        if lengths is not None and pitch is not None:
            keep = torch.arange(frames, device=z.device)[None, :] < lengths[:, None]
            pitch = pitch * keep
        spec = self._shaped(x, pitch, self.excitation.init_state(z.shape[0]))
        if lengths is not None:
            sub = torch.arange(spec.shape[-1], device=z.device)[None, :] // self.config.sub_frames
            spec = spec * (sub < lengths[:, None])[:, None, None, :]
        wav = self.synthesis(spec)
        if lengths is not None:
            wav = mask_tail(wav, lengths * self.hop_length)
        return wav, logits

    def forward(self, z: Tensor, lengths: Tensor | None = None, pitch: Tensor | None = None) -> Tensor:
        """latent [B, D, F] (+ valid frames [B], pitch codes [B, F]) -> wav [B, 1, F * hop], zero past
        each item's frames."""
        return self.synthesize(z, lengths, pitch)[0]

    # -- streaming -----------------------------------------------------------------------------------
    def init_state(self, batch_size: int, min_outputs: int = 1) -> SequenceState:
        """Convolution histories, the excitation's phase and tail, then the overlap-add's pending frames."""
        states: list = [self.embed.init_state(batch_size, min_outputs)]
        states += [block.dwconv.init_state(batch_size, min_outputs) for block in self.blocks]
        states.append(self.excitation.init_state(batch_size))
        states.append(self.synthesis.init_state(batch_size, self.config.channels))
        return SequenceState(states)

    def step(self, z: Tensor, state: SequenceState, pitch: Tensor | None = None) -> Tensor:
        """Latent frames [B, D, f] (+ their pitch codes [B, f]) -> the audio [B, 1, samples] they complete."""
        embed, *convs, excitation, overlap = state.children
        x = self._trunk(self.embed.step(z, embed), pitch)
        for block, conv in zip(self.blocks, convs, strict=True):
            x = block.step(x, conv)
        if pitch is None and self.pitch_head is not None:
            pitch = self.pitch_logits(x).argmax(1)
        spec = self._shaped(x, pitch, excitation)
        return self.synthesis.step(self.synthesis.synthesis_frames(spec), overlap)

    def flush(self, state: SequenceState) -> Tensor:
        """The audio [B, 1, (overlap - 1) * synthesis hop] still waiting for later sub-frames."""
        return self.synthesis.flush(state.children[-1])
