"""Waveform <-> normalised log-mel and back: the spectrogram, mel -> linear inversion, the
harmonic start, phase recovery (PGHI, fast Griffin-Lim), the learned inverse mel and the
metrics that score a reconstruction."""
