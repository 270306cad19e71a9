"""Offline checks of deploy/ and tilt/: image, manifests, Tiltfile, CLI commands."""
