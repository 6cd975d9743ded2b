"""Loaded at interpreter start by `localcloud run` and the kernel: redirect AWS calls if asked."""

import os

if os.environ.get("LOCALCLOUD_ENDPOINT"):
    from localcloud import offline
    from localcloud.client import install

    offline.install()  # first: nothing this process does may reach beyond loopback
    install()
