"""`python -m kit TASK ...`: the same as the `static-rust-kit` command."""

from kit.cli import main

main()
