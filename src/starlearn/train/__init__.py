"""Training: the loop, losses, augmentations (torch), class balancing and search."""
