"""Pure domain logic: states, templates, backoff, classification, identity. No I/O here."""
