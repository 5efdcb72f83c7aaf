"""Helpers shared by the test modules: paths, the vector loader, fakes and strategies."""
