"""The bottom layer: settings from the environment, atomic writes, input checks, seeding and
device choice. Nothing here imports another part of sda_lab."""

__version__ = "0.1.0"
