"""Training a VAE: the config, the loop and its hooks, the history and its verdict,
checkpoints, named recipes, the default model's cache, and a folder of clips to a model."""
