"""`invoke release-check` / `invoke ci-matrix`: the pre-release checklist (its gates and
report), the CycloneDX SBOM, and the generated CI workflow."""
