"""Contrastive pretraining: augmentations, losses, model, data, trainer."""
