"""What every capability shares: errors and the task boundary, the console, the one command
runner, atomic file writes, the options object, artifact paths, versioned records, the
SOURCE_DATE_EPOCH policy, and the vocabulary of targets and allocators."""
