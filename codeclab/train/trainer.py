"""Codec training: one process or many (torchrun + DistributedDataParallel).

    trainer = Trainer(codec_config, TrainConfig(steps=20_000), data=["corpus/manifest.jsonl"], run_dir="runs/a")
    trainer.run()            # resumes from run_dir's latest checkpoint when resume=True

Per step: the codec reconstructs a batch of crops; the generator loss is the weighted sum of multi-scale
mel L1, multi-resolution STFT, waveform L1, adversarial and feature-matching losses (or EnCodec's balancer
over them) plus the quantizer's own losses, plus, for a codec with `config.semantic`, the distillation loss
between its semantic head and the teacher's features at the crop's frame times (read from the teacher
cache, filled before the first step); then the discriminators step on real versus reconstructed audio.
AdamW with linear warm-up and cosine decay, gradient clipping, bf16 autocast on CUDA.

The run directory holds config.json, metrics.jsonl (one line per logged step and per validation),
checkpoints/ (everything needed to resume exactly: step, models, optimisers, schedulers, balancer, RNG
states), samples/step_*/ (validation audio), codec/ (the final codec, loadable with load_codec) and
ranks/rank*.json (each rank's final weights sha256: they must agree).
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from codeclab._launch import launch_place
from codeclab._version import __version__
from codeclab.audio.io import write_audio
from codeclab.audio.spectral import mel_distance
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.codecs.semantic import semantic_loss
from codeclab.train.balancer import Balancer
from codeclab.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from codeclab.train.config import TrainConfig
from codeclab.train.dataset import AudioDataset, TrainingBatches
from codeclab.train.discriminators import Discriminators
from codeclab.train.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    PhaseLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    waveform_l1,
)
from codeclab.train.warm_start import warm_start

log = logging.getLogger("codeclab.train")


@dataclass
class TrainState:
    """Where a run stands: the step just done, steps done in this process, audio seen and wall time since
    this process started (a resumed run counts from its own start), and the last step's metrics."""

    started: float
    step: int = -1
    done: int = 0
    audio_seconds: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)


def cosine_schedule(warmup: int, total: int, min_ratio: float):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        progress = min(1.0, (step - warmup) / max(total - warmup, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def codebook_health(quantizer_metrics: dict[str, Tensor]) -> dict[str, float]:
    """Per-stage codebook health for metrics.jsonl: `q{i}/usage` (fraction of the codebook used in the
    batch), `q{i}/perplexity` (of the batch's codes), `q{i}/ema_perplexity` (of the EMA use shares: the
    batch-size independent figure the warning watches) and `q{i}/replaced` (dead codes moved this step),
    plus `codebook_usage`, the mean usage over stages."""
    out: dict[str, float] = {}
    usage = quantizer_metrics.get("usage")
    if usage is not None:
        out["codebook_usage"] = float(usage.float().mean())
    for key in ("usage", "perplexity", "ema_perplexity", "replaced"):
        values = quantizer_metrics.get(key)
        if values is None:
            continue
        for i, value in enumerate(values.reshape(-1).tolist()):
            out[f"q{i}/{key}"] = float(value)
    return out


def weak_stages(metrics: dict[str, float], codebook_size: int, min_fraction: float) -> list[int]:
    """Stages whose EMA perplexity is below min_fraction x codebook_size."""
    weak = []
    i = 0
    while f"q{i}/ema_perplexity" in metrics:
        if metrics[f"q{i}/ema_perplexity"] < min_fraction * codebook_size:
            weak.append(i)
        i += 1
    return weak


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def _perplexities(metrics: dict[str, float]) -> str:
    """Per-stage EMA perplexities for the progress line, e.g. "612/480/301/150"."""
    values, i = [], 0
    while f"q{i}/ema_perplexity" in metrics:
        values.append(f"{metrics[f'q{i}/ema_perplexity']:.0f}")
        i += 1
    return "/".join(values) or "-"


class Trainer:
    def __init__(
        self,
        codec_config: CodecConfig,
        config: TrainConfig,
        data: list[str],
        run_dir: str | Path,
        device: str | None = None,
        resume: bool = False,
        name: str = "codeclab-custom",
        show_progress: bool = True,
    ) -> None:
        self.codec_config, self.config, self.data = codec_config, config, list(data)
        self.run_dir, self.resume, self.name, self.show_progress = Path(run_dir), resume, name, show_progress
        place = launch_place()
        self.world, self.rank = place.world, place.rank
        if self.world > 1 and not dist.is_initialized():
            use_cuda = device is None and torch.cuda.is_available() or (device or "").startswith("cuda")
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if device is None:
            device = f"cuda:{place.local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.is_main = self.rank == 0

    # -- setup -----------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        codec = NeuralCodec.from_config(self.codec_config, name=self.name).to(self.device)
        self.codec = codec
        self.disc = (
            Discriminators(tuple(cfg.discriminators), width=cfg.disc_width).to(self.device)
            if cfg.adversarial
            else None
        )
        self.mel_loss = MultiScaleMelLoss(self.codec_config.sample_rate)
        self.stft_loss = MultiResolutionSTFTLoss() if cfg.stft_weight > 0 else None
        self.phase_loss = PhaseLoss() if cfg.phase_weight > 0 else None
        self.opt_g = torch.optim.AdamW(
            codec.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
        schedule = cosine_schedule(cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, schedule)
        if self.disc is not None:
            self.opt_d = torch.optim.AdamW(
                self.disc.parameters(), lr=cfg.disc_lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )
            self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, schedule)
        self.balancer = Balancer(self._weights()) if cfg.balancer else None
        self.teacher_cache = self._teacher_cache()
        self.start_step = 0
        checkpoint = latest_checkpoint(self.run_dir) if self.resume else None
        if self.resume and checkpoint is None:
            log.info("no checkpoint in %s: starting from scratch", self.run_dir)
        if checkpoint is not None:
            self._load(checkpoint)
        elif cfg.init_from:
            loaded, skipped = warm_start(codec, cfg.init_from, cfg.init_skip)
            log.info(
                "warm start from %s: %d tensors loaded, %d left as initialised (%s)",
                cfg.init_from,
                loaded,
                len(skipped),
                ", ".join(skipped[:8]) + (" ..." if len(skipped) > 8 else ""),
            )
        if self.world > 1:
            unused = not getattr(self.codec_config.quantizer, "ema", True)
            self.model = nn.parallel.DistributedDataParallel(
                codec,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=unused,
            )
            if self.disc is not None:
                self.disc_model = nn.parallel.DistributedDataParallel(
                    self.disc, device_ids=[self.device.index] if self.device.type == "cuda" else None
                )
        else:
            self.model = codec
            self.disc_model = self.disc

    def _teacher_cache(self):
        semantic = self.codec_config.semantic
        if semantic is None:
            return None
        from codeclab.teachers import load_teacher
        from codeclab.teachers.cache import TeacherCache

        teacher = load_teacher(semantic.teacher, device=str(self.device))
        if teacher.dim != semantic.teacher_dim:
            raise ValueError(
                f"teacher {semantic.teacher} gives {teacher.dim}-dim features; the codec's semantic head "
                f"expects {semantic.teacher_dim}"
            )
        root = (
            Path(self.config.teacher_cache) if self.config.teacher_cache else self.run_dir / "teacher-cache"
        )
        return TeacherCache(root, teacher, self.config.target_db)

    def _fill_teacher_cache(self, dataset: AudioDataset) -> None:
        """Teacher features for every training file, each rank computing its share, before step one."""
        paths = sorted({clip.item.path for clip in dataset.clips})
        computed, _ = self.teacher_cache.fill(paths[self.rank :: self.world])  # failures are logged
        self._barrier()
        if self.is_main:
            log.info(
                "teacher features for %d files in %s (%d computed now)",
                len(paths),
                self.teacher_cache.dir,
                computed,
            )

    def semantic_targets(self, clips: Tensor, offsets: Tensor, frames: int) -> Tensor:
        """Teacher features at the codec frame times of each crop: [B, frames, D_t]."""
        from codeclab.teachers import codec_frame_times, features_at

        teacher = self.teacher_cache.teacher
        frame_rate = self.codec_config.sample_rate / self.codec_config.hop_length
        out = []
        for c, offset in zip(clips.tolist(), offsets.tolist()):
            clip = self.train_set.clips[int(c)]
            features = self.teacher_cache.get(clip.item.path)
            times = codec_frame_times(frames, frame_rate, clip.start + float(offset))
            out.append(features_at(features, teacher.frame_rate, times))
        return torch.stack(out).to(self.device)

    def _weights(self) -> dict[str, float]:
        cfg = self.config
        return {
            "mel": cfg.mel_weight,
            "stft": cfg.stft_weight,
            "phase": cfg.phase_weight,
            "waveform": cfg.waveform_weight,
            "adv": cfg.adv_weight,
            "fm": cfg.fm_weight,
        }

    def _state(self, step: int) -> dict[str, Any]:
        state: dict[str, Any] = {
            "codec": self.codec.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "rng": rng_state(),
            "balancer": self.balancer.state_dict() if self.balancer else None,
            "codeclab_version": __version__,
            # training scratch outside the weights (the quantizers' rows of earlier batches)
            "scratch": {
                name: buf
                for name, buf in self.codec.named_buffers()
                if name.endswith(("recent_rows", "rows_since_use"))
            },
        }
        if self.disc is not None:
            state.update(
                disc=self.disc.state_dict(), opt_d=self.opt_d.state_dict(), sched_d=self.sched_d.state_dict()
            )
        return state

    def _load(self, path: Path) -> None:
        step, state = load_checkpoint(path)
        self.codec.load_state_dict(state["codec"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sched_g.load_state_dict(state["sched_g"])
        if self.disc is not None and "disc" in state:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_d.load_state_dict(state["sched_d"])
        elif self.disc is not None:
            # a run trained for reconstruction first and resumed with `adversarial` on: the discriminators
            # start fresh (their learning rate warms up from this step)
            log.info(
                "%s has no discriminator state: the discriminators start fresh at step %d", path, step + 1
            )
        if self.balancer is not None and state.get("balancer"):
            self.balancer.load_state_dict(state["balancer"])
        buffers = dict(self.codec.named_buffers())
        for name, value in (state.get("scratch") or {}).items():
            module_name, _, attr = name.rpartition(".")
            setattr(self.codec.get_submodule(module_name), attr, value.to(buffers[name].device))
        set_rng_state(state["rng"])
        self.start_step = step + 1
        log.info("resumed from %s (next step %d)", path, self.start_step)

    # -- one step ----------------------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def train_step(
        self,
        wav: Tensor,
        lengths: Tensor,
        step: int,
        clips: Tensor | None = None,
        offsets: Tensor | None = None,
    ) -> dict[str, float]:
        """One generator (and discriminator) step on wav [B, C, T]; `clips` / `offsets` [B] locate the
        crops in the training set (needed for semantic distillation)."""
        self.model.train()
        with self._autocast():
            out = self.model(wav, lengths)
        recon = out.audio.float()
        losses, adversarial = self._reconstruction_losses(recon, wav, step)
        quantizer_loss, semantic_value = self._internal_losses(out, clips, offsets)
        aux_loss = (
            quantizer_loss
            if semantic_value is None
            else quantizer_loss + self.codec_config.semantic.weight * semantic_value
        )
        total, grad_norm = self._generator_update(losses, recon, aux_loss)

        metrics = {f"loss/{k}": float(v.detach()) for k, v in losses.items()}
        metrics.update(
            {
                "loss/quantizer": float(quantizer_loss.detach()),
                "loss/total": float(total.detach()),
                "grad_norm": float(grad_norm),
                "lr": self.sched_g.get_last_lr()[0],
            }
        )
        if semantic_value is not None:
            metrics["loss/semantic"] = float(semantic_value.detach())
        metrics.update(codebook_health(out.quantizer.metrics))
        if adversarial:
            metrics["loss/disc"] = self._discriminator_step(wav, recon.detach())
        return metrics

    def _reconstruction_losses(self, recon: Tensor, wav: Tensor, step: int) -> tuple[dict[str, Tensor], bool]:
        """Losses of recon against wav [B, C, T] that this step uses (mel; STFT from `stft_start`; waveform;
        adversarial and feature matching from `adversarial_start`), and whether the adversarial ones ran."""
        cfg = self.config
        losses: dict[str, Tensor] = {"mel": self.mel_loss(recon, wav)}
        if self.stft_loss is not None and step >= cfg.stft_start:
            losses["stft"] = self.stft_loss(recon, wav)
        if self.phase_loss is not None:
            losses["phase"] = self.phase_loss(recon, wav)
        if cfg.waveform_weight > 0:
            losses["waveform"] = waveform_l1(recon, wav)
        adversarial = self.disc is not None and step >= cfg.adversarial_start
        if adversarial:
            with self._autocast():
                fake_logits, fake_feats = self.disc_model(recon)
                with torch.no_grad():
                    _, real_feats = unwrap(self.disc_model)(wav)
            losses["adv"] = generator_adversarial_loss([x.float() for x in fake_logits], cfg.adversarial_loss)
            losses["fm"] = feature_matching_loss(real_feats, fake_feats)
        return losses, adversarial

    def _internal_losses(
        self, out, clips: Tensor | None, offsets: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """Losses on the codec's internals, not on its audio: the weighted quantizer loss, and the semantic
        distillation loss (unweighted; None for a codec without a semantic head)."""
        quantizer_loss = out.quantizer.loss * self.config.quantizer_weight
        if out.pitch_logits is not None:  # a decoder that predicts F0: cross-entropy on the tracker's codes
            valid = torch.arange(out.pitch.shape[-1], device=self.device)[None, :] < out.frames[:, None]
            ce = torch.nn.functional.cross_entropy(out.pitch_logits, out.pitch, reduction="none")
            quantizer_loss = quantizer_loss + self.config.pitch_weight * (ce * valid).sum() / valid.sum()
        if out.semantic is None:
            return quantizer_loss, None
        if clips is None or offsets is None:
            raise ValueError("a semantic codec needs the crops' clips and offsets for its teacher targets")
        target = self.semantic_targets(clips, offsets, out.semantic.shape[1])
        mask = torch.arange(out.semantic.shape[1], device=self.device)[None, :] < out.frames[:, None]
        return quantizer_loss, semantic_loss(self.codec_config.semantic.loss, out.semantic, target, mask)

    def _generator_update(
        self, losses: dict[str, Tensor], recon: Tensor, aux_loss: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Backward (through the balancer when on), clip, optimiser and scheduler step. Returns (total
        loss, gradient norm before clipping)."""
        weights = self._weights()
        self.opt_g.zero_grad(set_to_none=True)
        if self.balancer is not None:
            combined, _ = self.balancer.combined_gradient(losses, recon)
            torch.autograd.backward([recon, aux_loss], [combined, torch.ones_like(aux_loss)])
            total = sum(weights[k] * v.detach() for k, v in losses.items()) + aux_loss.detach()
        else:
            total = sum(weights[k] * v for k, v in losses.items()) + aux_loss
            total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.codec.parameters(), self.config.grad_clip)
        self.opt_g.step()
        self.sched_g.step()
        return total, grad_norm

    def _discriminator_step(self, real: Tensor, fake: Tensor) -> float:
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            logits, _ = self.disc_model(torch.cat([real, fake]))  # one forward: DDP-friendly
        b = real.shape[0]
        loss = discriminator_loss(
            [x[:b].float() for x in logits], [x[b:].float() for x in logits], self.config.adversarial_loss
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.disc.parameters(), self.config.grad_clip)
        self.opt_d.step()
        self.sched_d.step()
        return float(loss.detach())

    # -- validation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, step: int) -> dict[str, float]:
        codec = self.codec
        codec.eval()
        distances = []
        out_dir = self.run_dir / "samples" / f"step_{step:08d}"
        for i in range(min(self.config.val_items, len(self.val_set))):
            wav = self.val_set.full(i, self.config.val_seconds).to(self.device)
            recon = codec.decode(codec.encode(wav[None]))[0]
            distances.append(float(mel_distance(wav, recon, codec.sample_rate)))
            if i < self.config.samples_to_write:
                write_audio(out_dir / f"{i:02d}_original.wav", wav.cpu().numpy(), codec.sample_rate)
                write_audio(out_dir / f"{i:02d}_reconstruction.wav", recon.cpu().numpy(), codec.sample_rate)
        result = {"val/mel_distance": sum(distances) / len(distances)}
        if self.eval_set is not None:
            result.update(self.score_heldout(codec))
        return result

    @torch.no_grad()
    def score_heldout(self, codec: NeuralCodec) -> dict[str, float]:
        """Mean mel distance and STOI (when pystoi is installed) over the held-out items (`eval_data`)."""
        try:
            import pystoi
        except ImportError:
            pystoi = None
        distances, stois = [], []
        for i in range(min(self.config.eval_items, len(self.eval_set))):
            wav = self.eval_set.full(i, self.config.eval_seconds).to(self.device)
            recon = codec.decode(codec.encode(wav[None]))[0]
            distances.append(float(mel_distance(wav, recon, codec.sample_rate)))
            if pystoi is not None:
                ref, est = wav[0].cpu().double().numpy(), recon[0].cpu().double().numpy()
                stois.append(float(pystoi.stoi(ref, est, codec.sample_rate, extended=False)))
        out = {"heldout/mel_distance": sum(distances) / len(distances)}
        if stois:
            out["heldout/stoi"] = sum(stois) / len(stois)
        return out

    # -- the loop --------------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, record["step"])

    def _agree(self, flag: bool) -> bool:
        """True on every rank when rank 0 says so (wall clocks differ between ranks)."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.broadcast(value, 0)
        return bool(value.item())

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def run(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train until config.steps (or, with `stop_after`, after that many steps of this run, with a
        checkpoint written first: for time-limited jobs; resume=True continues exactly)."""
        cfg = self.config
        self._write_run_config()
        self._build()
        loader = self._prepare_data()
        progress = self._progress()
        state = TrainState(started=time.perf_counter())
        for batch in loader:
            state.step = int(batch["step"])
            wav, lengths = batch["wav"].to(self.device), batch["lengths"].to(self.device)
            metrics = self.train_step(wav, lengths, state.step, batch["clips"], batch["offsets"])
            state.audio_seconds += cfg.batch_size * cfg.segment_seconds * self.world
            state.last = {"step": state.step, **metrics}
            state.done += 1
            self._after_step(state, metrics, progress)
            if self._checkpoint_or_stop(state, stop_after):
                break
        if progress is not None:
            progress[0].stop()
        if stop_after is not None and state.last and state.last["step"] < cfg.steps - 1:
            return state.last
        return self._finish(state.last)

    def _write_run_config(self) -> None:
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "codec": self.codec_config.to_dict(),
            "train": self.config.to_dict(),
            "data": self.data,
            "world_size": self.world,
            "codeclab_version": __version__,
        }
        (self.run_dir / "config.json").write_text(json.dumps(record, indent=2) + "\n")

    def _prepare_data(self) -> torch.utils.data.DataLoader:
        """The training, validation and held-out sets, teacher features, TensorBoard, and the loader of
        this rank's batches from `start_step` on."""
        cfg = self.config
        sr, ch = self.codec_config.sample_rate, self.codec_config.encoder.channels
        split = dict(val_fraction=cfg.val_fraction, target_db=cfg.target_db)
        train_set = AudioDataset(self.data, sr, ch, cfg.segment_seconds, split="train", **split)
        try:
            self.val_set = AudioDataset(self.data, sr, ch, cfg.segment_seconds, split="validation", **split)
        except ValueError:
            log.warning("no validation items: validating on training items")
            self.val_set = train_set
        self.train_set = train_set
        self.eval_set = None
        if cfg.eval_data:
            self.eval_set = AudioDataset(
                cfg.eval_data, sr, ch, cfg.segment_seconds, split=None, target_db=cfg.target_db
            )
        if self.teacher_cache is not None:
            self._fill_teacher_cache(train_set)
        self.writer = None
        if cfg.tensorboard and self.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                log.warning(
                    "tensorboard is not installed: pip install tensorboard (metrics.jsonl is written anyway)"
                )
        batches = TrainingBatches(train_set, cfg.batch_size, cfg.seed, self.start_step, self.rank, cfg.steps)
        return torch.utils.data.DataLoader(
            batches,
            batch_size=None,
            num_workers=cfg.num_workers,
            prefetch_factor=2 if cfg.num_workers else None,
            persistent_workers=False,
            # its own generator: creating the iterator must not draw from the global RNG, which a resumed run
            # restores from the checkpoint (batches themselves depend only on seed, step and rank)
            generator=torch.Generator().manual_seed(cfg.seed),
        )

    def _after_step(self, state: TrainState, metrics: dict[str, float], progress) -> None:
        """The hooks after every step: metrics log, progress bar, codebook-health warning, validation."""
        cfg, step = self.config, state.step
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            elapsed = time.perf_counter() - state.started
            self._log(
                {
                    "step": step,
                    "split": "train",
                    **metrics,
                    "audio_seconds_per_second": state.audio_seconds / max(elapsed, 1e-9),
                    "wall_seconds": elapsed,
                }
            )
        if progress is not None:
            progress[0].update(
                progress[1], completed=step + 1, mel=metrics["loss/mel"], ppl=_perplexities(metrics)
            )
        if step % cfg.log_every == 0 and self.is_main:
            weak = weak_stages(metrics, self.codec.codebook_size, cfg.min_perplexity_fraction)
            if weak and step >= cfg.warmup_steps // 2:
                log.warning(
                    "step %d: codebook stage(s) %s use few codes (EMA perplexity below %.0f%% of %d): "
                    "they may be collapsing",
                    step,
                    ", ".join(str(i + 1) for i in weak),
                    100 * cfg.min_perplexity_fraction,
                    self.codec.codebook_size,
                )
        if (step + 1) % cfg.validate_every == 0 or step == cfg.steps - 1:
            self._validate_and_log(state)

    def _validate_and_log(self, state: TrainState) -> None:
        if self.is_main:
            val = self.validate(state.step)
            wall = time.perf_counter() - state.started
            self._log({"step": state.step, "split": "validation", "wall_seconds": wall, **val})
            state.last.update(val)
        self._barrier()

    def _checkpoint_or_stop(self, state: TrainState, stop_after: int | None) -> bool:
        """Write a checkpoint when one is due; True when this run ends here (stop_after or max_seconds)."""
        cfg, step = self.config, state.step
        stopping = stop_after is not None and state.done >= stop_after and step < cfg.steps - 1
        out_of_time = cfg.max_seconds > 0 and time.perf_counter() - state.started >= cfg.max_seconds
        out_of_time = self._agree(out_of_time)
        if out_of_time and not stopping and step < cfg.steps - 1:
            if (step + 1) % cfg.validate_every != 0:  # the end of the run is always validated
                self._validate_and_log(state)
            self._save(step)
            log.info("max_seconds reached at step %d: finishing the run", step)
            return True
        if (step + 1) % cfg.checkpoint_every == 0 or step == cfg.steps - 1 or stopping:
            self._save(step)
        if stopping:
            log.info("stopping after %d steps of this run at step %d; resume to continue", state.done, step)
        return stopping

    def _save(self, step: int) -> None:
        if self.is_main:
            save_checkpoint(self.run_dir, step, self._state(step), self.config.keep_checkpoints)
        self._barrier()

    def _progress(self):
        if not (self.is_main and self.show_progress):
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("mel {task.fields[mel]:.3f}"),
            TextColumn("ppl {task.fields[ppl]}"),
            TimeRemainingColumn(),
        )
        task = progress.add_task(
            "train", total=self.config.steps, completed=self.start_step, mel=float("nan"), ppl="-"
        )
        progress.start()
        return progress, task

    def _finish(self, last: dict[str, Any]) -> dict[str, Any]:
        from codeclab.catalog.fingerprint import weights_sha256
        from codeclab.catalog.loading import save_pretrained

        ranks = self.run_dir / "ranks"
        if self.is_main:
            ranks.mkdir(parents=True, exist_ok=True)
        self._barrier()
        self.codec.eval()
        (ranks / f"rank{self.rank}.json").write_text(
            json.dumps({"rank": self.rank, "weights_sha256": weights_sha256(self.codec)}) + "\n"
        )
        if self.is_main:
            from codeclab.catalog.presets import preset_version

            extra = {"trained_steps": int(last.get("step", self.config.steps - 1)) + 1, "preset": self.name}
            extra["preset_version"] = preset_version(self.name)
            save_pretrained(self.codec, self.run_dir / "codec", extra=extra)
        self._barrier()
        if self.writer is not None:
            self.writer.close()
        return last


def export_checkpoint(run_dir: str | Path, name: str = "codeclab-custom") -> Path:
    """Write RUN/codec (as the end of a run writes it) from the run's latest checkpoint: for a run stopped
    before its last step (killed, `--stop-after`) whose weights are wanted as they are. Returns RUN/codec."""
    from codeclab.catalog.loading import save_pretrained
    from codeclab.catalog.presets import preset_version

    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to export (checkpoints/latest.json)")
    try:
        record = json.loads((run_dir / "config.json").read_text())
        config = CodecConfig.from_dict(record["codec"])
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{run_dir / 'config.json'}: cannot read the run's codec config ({err})") from None
    step, state = load_checkpoint(checkpoint)
    codec = NeuralCodec.from_config(config, name=name)
    codec.load_state_dict(state["codec"])
    codec.eval()
    extra = {"trained_steps": step + 1, "preset": name, "preset_version": preset_version(name)}
    return save_pretrained(codec, run_dir / "codec", extra=extra)
