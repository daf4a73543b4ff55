"""What a person touches: the notebook widgets, the figures and players, the command line
(``python -m sda_lab``) and the TorchScript export."""
