"""The input/output room: atomic writes, output folders (checked, locked, recovered) and tables."""
