"""The JSON API under ``/api``, one router per resource: projects (with their classes,
imports, exports and analytics), images, annotations, assist (the model in the loop),
jobs and events."""
