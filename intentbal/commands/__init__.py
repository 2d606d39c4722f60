"""The commands room: one module per CLI command, each a short coordinator of named phases."""
