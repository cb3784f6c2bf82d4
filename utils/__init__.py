"""Helpers: images, LFW pairs and metrics, errors, atomic file writes."""
