"""One module per generator; each registers itself with `register_generator` on import."""
