"""The training room: the recipe (what makes a model), the loops, losses, checkpoints, frozen
layers, batches and the several-process launch."""
