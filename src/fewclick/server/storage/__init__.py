"""Every SQL statement of the server, one module per resource (the tables themselves are in
:mod:`fewclick.server.db`, their history in ``migrations/``).

- :mod:`~fewclick.server.storage.rows`: any row by its id, the project a row belongs to, and
  writing what a session holds;
- :mod:`~fewclick.server.storage.projects`: projects and their classes;
- :mod:`~fewclick.server.storage.images`: images, their revisions and statuses;
- :mod:`~fewclick.server.storage.annotations`: annotations and the reads over the user's work;
- :mod:`~fewclick.server.storage.versions`: model versions and mask-backend comparisons;
- :mod:`~fewclick.server.storage.jobs`: job rows;
- :mod:`~fewclick.server.storage.box_queries`: the review queue's boxes;
- :mod:`~fewclick.server.storage.events`: the interaction log;
- :mod:`~fewclick.server.storage.users`: users, project roles, API tokens and browser sessions;
- :mod:`~fewclick.server.storage.logins`: failed log-ins.

Each function works on the caller's session and leaves the commit to the caller (the one
exception says so: a token's last use is written in a transaction of its own). The rules of
what may change (roles, status moves, checks of a user's input) are in the modules that call
these: :mod:`fewclick.server.store`, :mod:`fewclick.server.imports`,
:mod:`fewclick.server.accounts`, the jobs.
"""
