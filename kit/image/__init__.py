"""`invoke package` / `invoke smoke`: reproducible multi-arch scratch OCI images written without
a daemon, their records, loading and running them in Docker, and a throwaway local registry.

    archive    deterministic tar and gzip bytes
    oci        image bytes in memory (blobs, config, manifest, index, assemble, merge): pure
    layout     layouts and tarballs on disk: write, read back, verify
    inputs     what goes in: gated binaries, release facts, CA bundle
    report     the records: PackageReport, ImageTags, SmokeReport
    package    the task: package, merge
    repro      --check-reproducible: a second packaging in a fresh process
    container  `invoke smoke` through the Docker SDK
    registry   a local registry and a push / pull-by-digest round trip
    command    the two tasks as tasks.py calls them
"""
