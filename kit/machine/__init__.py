"""What this machine has: `invoke setup` installs what is missing, `invoke doctor` shows it."""
