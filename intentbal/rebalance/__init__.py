"""The rebalance room: row transforms that change what the model trains on (capping,
augmentation, pseudo-labelled rows, description rows), each rows in, rows out with provenance."""
