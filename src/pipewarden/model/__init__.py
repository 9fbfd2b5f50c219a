"""Typed, immutable values shared by every part of pipewarden. No I/O here."""
