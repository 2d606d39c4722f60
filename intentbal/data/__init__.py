"""The data room: intent data in memory, readers of every format, splits, profiles, overlap,
keywords, descriptions and the Rasa round trip, and what a command reads (inputs)."""
