"""The model room: the prototype head (``modeling.py``, copied into saved folders), loading,
tokenising, prototype starting vectors and the post-hoc logit adjustment."""
