"""Running on a Ray cluster: ``materialize`` over Ray Data, ``run`` with model actors.

Nothing here schedules work itself: Ray places the tasks and actors, retries the tasks of a worker
that died, and streams their results back to this process, which alone writes the manifest or the
records. Ray is imported only when an executor asks for it (``pip install
'medfm-robust-plugin[ray]'``).
"""
