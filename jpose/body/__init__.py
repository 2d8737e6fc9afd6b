"""Body models: linear blend skinning, SMPL and ANNY loaders, and the fitter."""
