"""Loaders for sources the ONNX path takes: ONNX files, PyTorch modules and Keras/SavedModel via tf2onnx.

Each loader is a small function that imports its framework lazily, when it is called.
"""
