"""Codec training: losses, discriminators, the loss balancer, checkpoints and the trainer (DDP-ready)."""
