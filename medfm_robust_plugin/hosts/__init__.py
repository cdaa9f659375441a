"""Adapters that run MedFM-Robust inside the common evaluation harnesses (VLMEvalKit, lm-eval).

Each adapter imports its harness only when used, so ``import medfm_robust_plugin`` stays fast.
"""
