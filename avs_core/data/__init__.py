"""AVSBench readers (``avsbench``), file decoding (``loading``), the embedded synthetic dataset
(``synthetic``) and the packed HDF5 splits (``prepare``). Import the submodules directly, so a
stage depends only on the code it uses."""
