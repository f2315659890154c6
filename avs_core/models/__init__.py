"""Encoders, fusion, decoders and heads. Import submodules directly."""
