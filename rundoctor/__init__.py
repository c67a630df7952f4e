"""rundoctor: reads the logs a training run leaves behind and says, with evidence, what is wrong."""

__version__ = "0.1.0"
