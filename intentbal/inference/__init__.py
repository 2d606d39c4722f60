"""The inference room: the classifier that predicts, its backends (PyTorch, ONNX Runtime) and the export."""
