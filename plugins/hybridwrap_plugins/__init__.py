"""First-party hybridwrap backbone plugins, registered through the ``hybridwrap.backbones`` entry points.

Importing a plugin module also registers its architecture in timm, so ``import hybridwrap_plugins.convlarge``
is all ``timm.create_model("convlarge")`` needs.
"""
