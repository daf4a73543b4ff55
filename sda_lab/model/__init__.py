"""The model and its loss: the convolutional VAE (a latent vector or a latent sequence along
time) and the VAE loss with its KL schedules."""
