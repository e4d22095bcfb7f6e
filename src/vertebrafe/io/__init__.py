"""Files: atomic output and the TOML writer (more readers and writers join here)."""
