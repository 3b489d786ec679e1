"""static-rust-kit: build, prove, benchmark and package static Rust binaries."""

__version__ = "0.1.0"
