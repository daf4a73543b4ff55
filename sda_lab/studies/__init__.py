"""What the trained models say: experiments over seeds (cached, parallel), rate against
distortion, latent dimensions and the descriptors they move, the posterior's prior, new sounds
and the copying check, every inversion path side by side, and the cost of a training step."""
