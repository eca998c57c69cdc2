"""The Wine tier: the real httpapi.dll of Wine 8, driven by Windows CPython (marker ``wine``)."""
