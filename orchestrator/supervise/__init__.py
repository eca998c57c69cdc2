"""Pure supervisor decisions: what to do about a pool's processes, given the facts and the time.

Owns: restart backoff, rapid-fail protection (IIS semantics), boot-failure halts, which slots to
spawn and which surplus processes to stop, stop escalation (SIGTERM, then kill), health-probe
verdicts and periodic recycling. Pure: takes values (and ``now``) and returns values; the Linux
backend's driver acts on them. Imports only the standard library.
"""
