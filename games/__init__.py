"""The game modes' plug-ins: what serverless.yml's custom.modes.<mode>.plugin names (docs/game-modes.md)."""
