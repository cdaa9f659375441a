"""The functions lm-eval task YAML names with ``!function`` (``conditions``).

The YAML itself is built at run time from the registered task cards into a cache folder
(``medfm_robust_plugin.hosts.lm_eval.tasks_dir``); nothing generated lives in the package.
"""
