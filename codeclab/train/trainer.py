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

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from codeclab._files import atomic_write_json
from codeclab._launch import launch_place
from codeclab._version import __version__
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.codecs.semantic import semantic_loss
from codeclab.train.balancer import Balancer
from codeclab.train.checkpoint import (
    latest_checkpoint,
    save_checkpoint,
)
from codeclab.train.config import TrainConfig
from codeclab.train.dataset import AudioDataset, batch_loader
from codeclab.train.discriminators import Discriminators
from codeclab.train.export import export_checkpoint, write_run_codec
from codeclab.train.health import codebook_health
from codeclab.train.losses import (
    SpectralLosses,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    loss_weights,
)
from codeclab.train.ranks import agree, barrier, unwrap
from codeclab.train.resume import restore_training_state, training_state
from codeclab.train.run_log import RunLog
from codeclab.train.schedule import cosine_schedule
from codeclab.train.semantic import SemanticTargets
from codeclab.train.validation import score_heldout, validate
from codeclab.train.warm_start import warm_start

if TYPE_CHECKING:
    from codeclab.teachers.cache import TeacherCache

log = logging.getLogger("codeclab.train")

__all__ = ["TrainState", "Trainer", "export_checkpoint"]


@dataclass
class TrainState:
    """Where a run stands: the step just done, steps done in this process, audio seen and wall time since
    this process started (a resumed run counts from its own start), and the last step's metrics."""

    started: float
    step: int = -1
    done: int = 0
    audio_seconds: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)


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
        self.runlog = RunLog(self.run_dir, self.is_main, show_progress)

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
        self.spectral_losses = SpectralLosses(cfg, self.codec_config.sample_rate)
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
        self.balancer = Balancer(loss_weights(self.config)) if cfg.balancer else None
        self.semantic = self._semantic_targets()
        self.start_step = 0
        checkpoint = latest_checkpoint(self.run_dir) if self.resume else None
        if self.resume and checkpoint is None:
            log.info("no checkpoint in %s: starting from scratch", self.run_dir)
        if checkpoint is not None:
            self.start_step = restore_training_state(self, checkpoint)
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

    def _semantic_targets(self) -> SemanticTargets | None:
        semantic = self.codec_config.semantic
        if semantic is None:
            return None
        cfg = self.config
        root = Path(cfg.teacher_cache) if cfg.teacher_cache else self.run_dir / "teacher-cache"
        sr, hop = self.codec_config.sample_rate, self.codec_config.hop_length
        return SemanticTargets.open(semantic, sr, hop, root, cfg.target_db, self.device)

    @property
    def teacher_cache(self) -> TeacherCache | None:
        """The teacher features' cache of a codec with `config.semantic` (None otherwise)."""
        return None if self.semantic is None else self.semantic.cache

    def _fill_teacher_cache(self, dataset: AudioDataset) -> None:
        """Teacher features for every training file, each rank computing its share, before step one."""
        files, computed = self.semantic.fill(dataset, self.rank, self.world)
        barrier(self.world)
        if self.is_main:
            log.info(
                "teacher features for %d files in %s (%d computed now)",
                files,
                self.semantic.cache.dir,
                computed,
            )

    def semantic_targets(self, clips: Tensor, offsets: Tensor, frames: int) -> Tensor:
        """Teacher features at the codec frame times of each crop: [B, frames, D_t]."""
        return self.semantic.at(self.train_set, clips, offsets, frames).to(self.device)

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
        losses = self.spectral_losses(recon, wav, step)
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
        weights = loss_weights(self.config)
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
    def validate(self, step: int) -> dict[str, float]:
        """Validation figures at `step` (train/validation.py), audio samples under samples/step_*/."""
        samples = self.run_dir / "samples" / f"step_{step:08d}"
        return validate(self.codec, self.val_set, self.eval_set, self.config, samples, self.device)

    def score_heldout(self, codec: NeuralCodec) -> dict[str, float]:
        return score_heldout(codec, self.eval_set, self.config, self.device)

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train until config.steps (or, with `stop_after`, after that many steps of this run, with a
        checkpoint written first: for time-limited jobs; resume=True continues exactly)."""
        cfg = self.config
        self._write_run_config()
        self._build()
        loader = self._prepare_data()
        self.runlog.start_progress(self.config.steps, self.start_step)
        state = TrainState(started=time.perf_counter())
        for batch in loader:
            state.step = int(batch["step"])
            wav, lengths = batch["wav"].to(self.device), batch["lengths"].to(self.device)
            metrics = self.train_step(wav, lengths, state.step, batch["clips"], batch["offsets"])
            state.audio_seconds += cfg.batch_size * cfg.segment_seconds * self.world
            state.last = {"step": state.step, **metrics}
            state.done += 1
            self._after_step(state, metrics)
            if self._checkpoint_or_stop(state, stop_after):
                break
        self.runlog.close()
        if stop_after is not None and state.last and state.last["step"] < cfg.steps - 1:
            return state.last
        return self._finish(state.last)

    def _write_run_config(self) -> None:
        record = {
            "codec": self.codec_config.to_dict(),
            "train": self.config.to_dict(),
            "data": self.data,
            "world_size": self.world,
            "codeclab_version": __version__,
        }
        self.runlog.write_run_config(record)

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
        if self.semantic is not None:
            self._fill_teacher_cache(train_set)
        if cfg.tensorboard:
            self.runlog.open_tensorboard()
        return batch_loader(
            train_set, cfg.batch_size, cfg.seed, self.start_step, self.rank, cfg.steps, cfg.num_workers
        )

    def _after_step(self, state: TrainState, metrics: dict[str, float]) -> None:
        """The hooks after every step: metrics log, progress bar, codebook-health warning, validation."""
        cfg, step = self.config, state.step
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            elapsed = time.perf_counter() - state.started
            self.runlog.record(
                {
                    "step": step,
                    "split": "train",
                    **metrics,
                    "audio_seconds_per_second": state.audio_seconds / max(elapsed, 1e-9),
                    "wall_seconds": elapsed,
                }
            )
        self.runlog.progress(step, metrics)
        if step % cfg.log_every == 0 and step >= cfg.warmup_steps // 2:
            self.runlog.warn_weak_codebooks(
                step, metrics, self.codec.codebook_size, cfg.min_perplexity_fraction
            )
        if (step + 1) % cfg.validate_every == 0 or step == cfg.steps - 1:
            self._validate_and_log(state)

    def _validate_and_log(self, state: TrainState) -> None:
        if self.is_main:
            val = self.validate(state.step)
            wall = time.perf_counter() - state.started
            self.runlog.record({"step": state.step, "split": "validation", "wall_seconds": wall, **val})
            state.last.update(val)
        barrier(self.world)

    def _checkpoint_or_stop(self, state: TrainState, stop_after: int | None) -> bool:
        """Write a checkpoint when one is due; True when this run ends here (stop_after or max_seconds)."""
        cfg, step = self.config, state.step
        stopping = stop_after is not None and state.done >= stop_after and step < cfg.steps - 1
        out_of_time = cfg.max_seconds > 0 and time.perf_counter() - state.started >= cfg.max_seconds
        out_of_time = agree(out_of_time, self.world, self.device)
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
            save_checkpoint(self.run_dir, step, training_state(self), self.config.keep_checkpoints)
        barrier(self.world)

    def _finish(self, last: dict[str, Any]) -> dict[str, Any]:
        from codeclab.catalog.fingerprint import weights_sha256

        ranks = self.run_dir / "ranks"
        if self.is_main:
            ranks.mkdir(parents=True, exist_ok=True)
        barrier(self.world)
        self.codec.eval()
        digest = {"rank": self.rank, "weights_sha256": weights_sha256(self.codec)}
        atomic_write_json(ranks / f"rank{self.rank}.json", digest, indent=None)
        if self.is_main:
            write_run_codec(
                self.codec, self.run_dir, self.name, int(last.get("step", self.config.steps - 1)) + 1
            )
        barrier(self.world)
        self.runlog.close()
        return last
