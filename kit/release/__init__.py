"""Release: `invoke release-check` and `invoke ci-matrix`.

model.py      the checklist's vocabulary: Status, Outcome, Gate, GateResult, Checklist
context.py    what the gates share: options, the Cargo project, build and image, once
gates/        the gates themselves (source, build, bench, image)
checklist.py  selecting and running the gates; the release-check entry point (`check`)
report.py     reports/release/report.json (a versioned record) and report.md
sbom.py       the CycloneDX SBOM of a built binary
workflow.py   the generated GitHub Actions workflow (`generate`)
"""
