"""The jobs behind the CLI: one module per command, one public function per job.

Each job checks its output first, reads its inputs (:mod:`intentbal.jobs.inputs`), runs the
pure core or the recipe (:mod:`intentbal.recipe`), and writes its outputs atomically.
Nothing here prints; progress is reported through an optional callback, warnings are
returned in the job's result.
"""
