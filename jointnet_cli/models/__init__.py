"""Architectures: `registry` builds them with their layer lists; one module per family."""
