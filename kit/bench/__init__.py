"""`invoke bench` / `nox -s bench`: the allocator benchmark, from variants and scenarios to
samples, statistics, the report, the charts and the winner record.

- plan: settings, the scenarios of the crate's declared workloads (kit.core.workloads) and
  the seeded, interleaved run order (pure)
- variants: the binaries measured, built by kit.build and described by their BuildRecords
- command, server, load, openloop: one run each, a command workload's fresh process, an
  HTTP workload's server under test, the wrk load generator and oha at a fixed rate
- isolation, memory, callgrind: CPU placement and the scrubbed environment, RSS over time,
  instruction counts
- facts: the machine and tools recorded with every run
- stats, analysis, verdict: medians, exact order-statistic intervals, the sign test and the
  verdict with its sequential looks (pure)
- report, charts: report.md and the PNG charts
- run: `run_bench` and `write_outputs`, the entry point and the files of a run
- winner: the Winner record and the one policy for which allocator ships

Importing this package is cheap: numpy, scipy and matplotlib (the `bench` extra) are imported
only by stats, analysis, report and charts, which run loads after the samples are in; run
checks that the extra is installed before anything is built."""
