//! Runnable examples for Airlock; see the `examples/` directory.
