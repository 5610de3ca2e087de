"""Raw sources: readers and generators of the embedded default datasets."""
