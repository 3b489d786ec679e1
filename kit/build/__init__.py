"""`invoke build`: toolchain and std probing, the Cargo project, the backends (cargo,
cargo-zigbuild, cross), planning and running a build, and the gates that judge the binary
(ELF, allocator, smoke run) before it reaches dist/ with its build record."""
