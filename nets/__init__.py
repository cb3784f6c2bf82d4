"""Keras 3 FaceNet networks: backbones, heads, losses and schedules."""
