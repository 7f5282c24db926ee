"""jointnet: jointly train one network per dataset and let IRLS decide, layer by layer, what to share."""

__version__ = "0.1.0"
