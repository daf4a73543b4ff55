"""sda-lab: a workbench for small-dataset audio VAEs."""

__version__ = "0.1.0"
