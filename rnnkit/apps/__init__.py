"""Applications built on the library: the quickstart, `rnnkit compare` and `rnnkit bench`."""
