"""The controller's read-only web dashboard (docs/dashboard.md).

``service`` (what the daemon holds), ``server`` (the HTTP side: routes, headers, auth), ``auth``
(bearer token and HTTP basic), ``history`` (the charts' last five minutes); the page itself is
``static/`` (HTML, JS and CSS shipped in the package, no build step). The dashboard reads the same
status document as ``status --json`` and changes nothing.
"""
