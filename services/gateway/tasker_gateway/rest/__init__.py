"""The REST transport: quart-trio on hypercorn."""
