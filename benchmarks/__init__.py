"""Benchmarks, run as `python -m benchmarks.<name>`: without TensorFlow's start-up lines
(FACENET_VERBOSE=1 brings them back), as every command of the project."""
from utils.quiet import quiet_tensorflow

quiet_tensorflow()
