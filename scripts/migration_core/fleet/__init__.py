"""Fleet: one migrations folder, many databases: plan them all, apply with a canary, stop on the first failure.

Modules: targets (read the targets file or --targets-query, --shard; parsing pure), children (run this project's
own scripts, one subprocess per target, with --json and the target's DB_URL in the environment only), plan (the
fleet plan), rollout (apply and rollback: refuse before anything runs, canary, parallel, stop), report (results,
JSON and human text: output.py's extension_renderers hook). Importing the package loads nothing else.
"""
