"""Face detection and landmark backends, and the model files they load."""
