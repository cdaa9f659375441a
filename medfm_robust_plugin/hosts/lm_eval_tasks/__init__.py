"""lm-eval task YAML generated from the task cards (pass this folder to ``--include_path``).

The YAML files are written by ``medfm_robust_plugin.hosts.lm_eval.write_tasks`` and must not be
edited by hand; ``conditions`` holds the functions they name with ``!function``.
"""
