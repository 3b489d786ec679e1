"""`invoke bench` / `nox -s bench`: the allocator benchmark, from variants and scenarios to
samples, statistics, the report, the charts and the winner record.

Importing this package is cheap: numpy, scipy and matplotlib (the `bench` extra) are imported
only by the modules that compute or draw."""
