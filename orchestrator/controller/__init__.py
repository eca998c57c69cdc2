"""The controller: the daemon (composition root and main loop), its admin API and the CLI's client.

Owns: the run directory layout, the control socket protocol (versioned JSON lines), its server and
client. Must not import ``cli``.
"""
