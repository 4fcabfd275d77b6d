"""Small model weights shipped with the package (a package so wheels include them).

Every file here is loaded through :mod:`napari_interfaces.core.weights`
(SHA-256 checked, ``torch.load(weights_only=True)``); nothing is downloaded.
"""
