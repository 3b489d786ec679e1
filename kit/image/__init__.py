"""`invoke package` / `invoke smoke`: reproducible multi-arch scratch OCI images written
without a daemon, the package report, loading and running them in Docker, and a throwaway
local registry."""
