"""pipewarden: lint pipeline definitions against an organisation's release best practices."""

__version__ = "0.1.0"
