"""The evaluation room: per-intent metrics, the fallback threshold, the audit gate and what to label next."""
