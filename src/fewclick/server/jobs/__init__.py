"""The app's jobs: work that runs in a process of its own and writes its progress to its
row of the ``jobs`` table (:mod:`fewclick.server.jobs.status`).

- :mod:`~fewclick.server.jobs.control` starts, stops and restarts them (request time);
- :mod:`~fewclick.server.jobs.run` holds the entry points a job's process runs, and
  :mod:`~fewclick.server.jobs.process` what every job's process does around its work
  (heartbeat, signals, failure);
- one module a job: :mod:`~fewclick.server.jobs.training` (a project's models),
  :mod:`~fewclick.server.jobs.trainer` (the background trainer),
  :mod:`~fewclick.server.jobs.queue` (the review queue's proposals),
  :mod:`~fewclick.server.jobs.preannotate` and :mod:`~fewclick.server.jobs.comparison`
  (of the mask backends).
"""
