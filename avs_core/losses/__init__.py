"""Small loss functions, one family per module. Import submodules directly."""
